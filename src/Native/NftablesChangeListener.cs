using Firezone.Actors.Native.Interop;

namespace Firezone.Actors.Native;

/// <summary>
/// Tells when the nftables ruleset of this network namespace changed (a table, chain, rule or set
/// added or removed, by any program): a NETLINK_NETFILTER socket joined to NFNLGRP_NFTABLES, the
/// group `nft monitor` listens to, read by a dedicated thread that calls <c>onChange</c> once per
/// burst. The messages are not parsed; the caller looks at the ruleset itself. Joining needs
/// CAP_NET_ADMIN.
/// </summary>
public sealed class NftablesChangeListener : IDisposable
{
    private readonly NetlinkGroupListener _listener;

    /// <summary>Opens and binds the socket, and starts the thread.</summary>
    /// <param name="onChange">Called on the listener's thread after each burst of ruleset changes (also after a lost burst: ENOBUFS).</param>
    /// <param name="onFailure">Called on the listener's thread if reading fails for good; the listener then stops.</param>
    /// <exception cref="IOException">The netlink socket could not be opened or bound; the message says why.</exception>
    public NftablesChangeListener(Action onChange, Action<Exception> onFailure) =>
        _listener = new NetlinkGroupListener("nftables change listener", Netlink.NETLINK_NETFILTER, Netlink.NfnlGrpNftablesMask, "NFNLGRP_NFTABLES", "nftables-changes",
            null, onChange, onFailure);

    /// <summary>Stops the thread, which closes the socket; waits for it unless called from a callback (on that thread).</summary>
    public void Dispose() => _listener.Dispose();
}
