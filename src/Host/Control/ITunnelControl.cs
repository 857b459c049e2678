using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Control;

/// <summary>
/// What the UAPI server and service mode need from the running tunnel. The production
/// implementation forwards to the PeerSupervisor actor; it is the host's only door into the
/// actor topology, so the UAPI and config code can be tested against an in-memory model.
/// Failures the UAPI must report (port in use, bad value) are <see cref="TunnelControlException"/>.
/// </summary>
public interface ITunnelControl
{
    Task<DeviceStatus> GetStatusAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The configuration a set starts from. The actor implementation reads what it keeps itself,
    /// without asking the tunnel for every peer's live state: a one-peer `wg set` on a daemon with
    /// 10,000 peers cost 46 ms of CPU reading their status (wireguard-go: well under 1 ms). This
    /// default, for models without that split, reads the status.
    /// </summary>
    async Task<DeviceConfiguration> GetConfigurationAsync(CancellationToken cancellationToken) =>
        DeviceConfiguration.Of(await GetStatusAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>Sets the static private key; null removes it (the UAPI's all-zero key).</summary>
    Task SetPrivateKeyAsync(WireGuardKey? privateKey, CancellationToken cancellationToken);

    /// <summary>Rebinds the UDP socket; 0 lets the system choose. EADDRINUSE when taken.</summary>
    Task SetListenPortAsync(ushort port, CancellationToken cancellationToken);

    /// <summary>SO_MARK for outgoing datagrams; 0 clears it (unless a mark is required, see <see cref="RequireFwmarkAsync"/>).</summary>
    Task SetFwmarkAsync(uint fwmark, CancellationToken cancellationToken);

    /// <summary>
    /// Service mode's full tunnel: the policy rules route every unmarked packet into the tunnel,
    /// so the socket must keep <paramref name="fwmark"/> (already set; null: no longer required):
    /// a later request to clear the mark keeps it instead. A control without a socket ignores it.
    /// </summary>
    void RequireFwmark(uint? fwmark)
    {
    }

    /// <summary>
    /// Creates the peer or replaces its configuration (keeping its session when it exists). The
    /// allowed IPs are the peer's full set; a prefix another peer holds moves to this one, as
    /// wireguard-go's allowed-IPs trie does on insert.
    /// </summary>
    Task AddOrUpdatePeerAsync(PeerConfig peer, CancellationToken cancellationToken);

    Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken);

    Task RemoveAllPeersAsync(CancellationToken cancellationToken);

    /// <summary>
    /// One <c>set=1</c> transaction's peer changes: every peer removed when <paramref name="removeAll"/>,
    /// else the keys in <paramref name="remove"/>; then each of <paramref name="upsert"/> as
    /// <see cref="AddOrUpdatePeerAsync"/>. The actor implementation sends it as one message, so
    /// wg addconf of 10,000 peers is one round trip; this default is the call-by-call equivalent.
    /// <paramref name="endpointNamed"/>: the peers whose endpoint the request named, which go to it
    /// even when it is the one configured before and roaming has moved them since (a model without
    /// roaming, as this default, has nothing to do for them).
    /// </summary>
    async Task ApplyPeerChangesAsync(bool removeAll, IReadOnlyList<WireGuardKey> remove, IReadOnlyList<PeerConfig> upsert,
        IReadOnlySet<WireGuardKey> endpointNamed, CancellationToken cancellationToken)
    {
        if (removeAll)
        {
            await RemoveAllPeersAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            foreach (var key in remove)
            {
                await RemovePeerAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
        foreach (var peer in upsert)
        {
            await AddOrUpdatePeerAsync(peer, cancellationToken).ConfigureAwait(false);
        }
    }
}
