using Akka.Actor;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Tunnel;

/// <summary>
/// Async request/response over a running TunnelActor, for code outside the actor system (the
/// host's UAPI server and configuration loader). Each call is one Ask with a time bound.
/// </summary>
public sealed class TunnelClient(IActorRef tunnel, TimeSpan timeout)
{
    public IActorRef Tunnel { get; } = tunnel;

    public Task<PeerConfigured> AddOrUpdatePeerAsync(PeerConfig config, CancellationToken cancellationToken = default) =>
        Tunnel.Ask<PeerConfigured>(new AddOrUpdatePeer(config), timeout, cancellationToken);

    public Task<PeerRemoved> RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken = default) =>
        Tunnel.Ask<PeerRemoved>(new RemovePeer(publicKey), timeout, cancellationToken);

    public Task<AllPeersRemoved> RemoveAllPeersAsync(CancellationToken cancellationToken = default) =>
        Tunnel.Ask<AllPeersRemoved>(RemoveAllPeers.Instance, timeout, cancellationToken);

    /// <summary>
    /// A whole transaction in one Ask. Its time bound grows with the number of peers (creating a
    /// peer costs a Curve25519 operation and an actor, tens of microseconds).
    /// </summary>
    public Task<PeerChangesApplied> ApplyPeerChangesAsync(ApplyPeerChanges changes, CancellationToken cancellationToken = default) =>
        Tunnel.Ask<PeerChangesApplied>(changes, BoundFor(changes), cancellationToken);

    /// <summary>The time bound of <see cref="ApplyPeerChangesAsync"/> for <paramref name="changes"/>.</summary>
    public TimeSpan BoundFor(ApplyPeerChanges changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        return timeout + TimeSpan.FromMilliseconds(changes.Upsert.Count + changes.Remove.Count);
    }

    /// <summary>
    /// The transaction answered however long it takes: the caller bounds its own wait, and cancels
    /// <paramref name="cancellationToken"/> when it stops waiting (a tunnel that stopped never answers).
    /// </summary>
    public Task<PeerChangesApplied> ApplyPeerChangesUnboundedAsync(ApplyPeerChanges changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        return Tunnel.Ask<PeerChangesApplied>(changes, Timeout.InfiniteTimeSpan, cancellationToken);
    }

    /// <summary>The status of every peer; its reply address forgets it once delivered (see <see cref="ReleasingReply{T}"/>).</summary>
    public Task<DeviceStatus> GetDeviceStatusAsync(CancellationToken cancellationToken = default) =>
        ReleasingReply<DeviceStatus>.Ask(Tunnel, GetDeviceStatus.Instance, timeout, cancellationToken);

    /// <summary>The peer's status, or null when no such peer is configured.</summary>
    public async Task<PeerStatus?> GetPeerStatusAsync(WireGuardKey publicKey, CancellationToken cancellationToken = default) =>
        await Tunnel.Ask<object>(new GetPeerStatus(publicKey), timeout, cancellationToken).ConfigureAwait(false) as PeerStatus;

    /// <summary>Starts a handshake with the peer now unless one is in flight (fire and forget).</summary>
    public void Connect(WireGuardKey publicKey) => Tunnel.Tell(new ConnectPeer(publicKey));

    /// <summary>After a new listen port: every peer with a session sends a keepalive (<see cref="Peers.SendKeepalivesOnSessions"/>).</summary>
    public void SendKeepalivesOnSessions() => Tunnel.Tell(Peers.SendKeepalivesOnSessions.Instance);
}
