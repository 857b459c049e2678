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
    /// A whole transaction in one Ask, answered however long it takes while the tunnel runs, as
    /// wireguard-go's set applies every peer before it answers; null when the tunnel stopped first
    /// (a tunnel that failed never answers). <paramref name="late"/> is told once, with the usual
    /// bound, when no answer came within it: the bound grows with the number of peers (creating a
    /// peer costs a Curve25519 operation and an actor, tens of microseconds), and only thousands of
    /// peers on a busy machine pass it. Ended at the bound (as before), `wg set` answered EIO for
    /// changes the tunnel went on applying, and the next request waited behind them until its own.
    /// </summary>
    public async Task<PeerChangesApplied?> ApplyPeerChangesAsync(ApplyPeerChanges changes, CancellationToken cancellationToken = default, Action<TimeSpan>? late = null)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var bound = timeout + TimeSpan.FromMilliseconds(changes.Upsert.Count + changes.Remove.Count);
        using var asking = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            var answer = Tunnel.Ask<PeerChangesApplied>(changes, Timeout.InfiniteTimeSpan, asking.Token);
            try
            {
                return await answer.WaitAsync(bound, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                late?.Invoke(bound);
            }
            // The tunnel's end too: one that stops before it answers never answers.
            var ended = Tunnel.WatchAsync(asking.Token);
            await Task.WhenAny(answer, ended).ConfigureAwait(false);
            if (answer.IsCompleted)
            {
                return await answer.ConfigureAwait(false);
            }
            cancellationToken.ThrowIfCancellationRequested();
            return null;
        }
        finally
        {
            asking.Cancel(); // an unanswered Ask of a tunnel that stopped, and the watch, end
        }
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
