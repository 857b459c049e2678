using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;

namespace Firezone.Actors.Host.Daemon;

/// <summary>Service mode: puts a parsed wg-quick file into the tunnel, as <c>wg setconf</c> would.</summary>
public static class TunnelConfigApplier
{
    public static async Task ApplyAsync(TunnelConfig config, ITunnelControl control, CancellationToken cancellationToken)
    {
        var device = config.Interface;
        // Port before key: the tunnel starts once the key is known, so it then starts once, on the right port.
        try
        {
            await control.SetListenPortAsync(device.ListenPort ?? 0, cancellationToken).ConfigureAwait(false);
        }
        catch (TunnelControlException e) when (device.ListenPortLine > 0)
        {
            // "UDP port 51820 is already in use" alone does not say where the port came from: the
            // one line names the file and the line, as every other mistake in it.
            throw new TunnelControlException(e.Errno, $"{config.SourcePath}:{device.ListenPortLine}: ListenPort: {e.Message}");
        }
        await control.SetPrivateKeyAsync(device.PrivateKey, cancellationToken).ConfigureAwait(false);
        // A fresh daemon has no fwmark, so "FwMark = off" has nothing to clear; and setting 0 here
        // would undo the mark the network setup gave the socket for a default route (wg-quick's
        // add_default picks one when FwMark is off or absent).
        if (device.FwMark is { } mark and not 0)
        {
            try
            {
                await control.SetFwmarkAsync(mark, cancellationToken).ConfigureAwait(false);
            }
            catch (TunnelControlException e) when (device.FwMarkLine > 0)
            {
                // As for ListenPort: the line the mark came from (SO_MARK needs CAP_NET_ADMIN, which a
                // daemon on a TUN device owned by its user may lack).
                throw new TunnelControlException(e.Errno, $"{config.SourcePath}:{device.FwMarkLine}: FwMark: {e.Message}");
            }
        }
        // A [Peer] with the interface's own public key is ignored, as wireguard-go does with `wg setconf`.
        WireGuardKey? own = device.PrivateKey is { } key ? Curve25519.PublicKeyOf(key) : null;
        var peers = config.Peers.Where(peer => peer.PublicKey != own).ToList();
        // One change, as the `wg setconf` of the drop-in daemon: one round trip, and one "peers
        // changed" line (each peer at Debug), not a line per peer at Information on every start.
        var named = peers.Where(peer => !peer.Endpoint.IsNone).Select(peer => peer.PublicKey).ToHashSet();
        await control.ApplyPeerChangesAsync(removeAll: true, [], peers, named, cancellationToken).ConfigureAwait(false);
    }
}
