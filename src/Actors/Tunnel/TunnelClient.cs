using Akka.Actor;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Tunnel;

/// <summary>
/// Async request/response over a running TunnelActor, for code outside the actor system (the
/// host's UAPI server and configuration loader). Each call is one Ask. What a `wg` command waits
/// on (a set's peer changes, the device status of a get) is waited for however long the tunnel
/// takes while it runs, as wireguard-go answers them, and told once at the usual bound; the
/// single-peer requests keep the bound (see <see cref="GetPeerStatusAsync"/>).
/// </summary>
public sealed class TunnelClient(IActorRef tunnel, TimeSpan timeout)
{
    public IActorRef Tunnel { get; } = tunnel;

    /// <summary>
    /// One peer's change within the bound, as are <see cref="RemovePeerAsync"/> and
    /// <see cref="RemoveAllPeersAsync"/>: only the service mode's start sends them (the file's peers,
    /// one at a time, before anything else asks the tunnel); a `wg set` sends <see cref="ApplyPeerChangesAsync"/>.
    /// </summary>
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
    public Task<PeerChangesApplied?> ApplyPeerChangesAsync(ApplyPeerChanges changes, CancellationToken cancellationToken = default, Action<TimeSpan>? late = null)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var bound = timeout + TimeSpan.FromMilliseconds(changes.Upsert.Count + changes.Remove.Count);
        return AnswerWhileRunningAsync(token => Tunnel.Ask<PeerChangesApplied>(changes, Timeout.InfiniteTimeSpan, token), bound, late, cancellationToken);
    }

    /// <summary>
    /// The status of every peer, answered however long it takes while the tunnel runs, as
    /// wireguard-go's get answers once it has every peer's (and once a set before it is applied);
    /// null when the tunnel stopped first. <paramref name="late"/> is told once, with the usual
    /// bound, when no answer came within it. Ended at the bound (as before), `wg show` of 10,000
    /// peers on a busy machine, or one behind a large set, answered EIO although the answer was on
    /// its way. The supervisor answers it itself, and a supervisor that fails stops the tunnel, so
    /// watching the tunnel is enough. Its reply address forgets the status once delivered (see
    /// <see cref="ReleasingReply{T}"/>).
    /// </summary>
    public Task<DeviceStatus?> GetDeviceStatusAsync(CancellationToken cancellationToken = default, Action<TimeSpan>? late = null) =>
        AnswerWhileRunningAsync(token => ReleasingReply<DeviceStatus>.Ask(Tunnel, GetDeviceStatus.Instance, Timeout.InfiniteTimeSpan, token), timeout, late, cancellationToken);

    /// <summary>
    /// The peer's status, or null when no such peer is configured; within the bound. Not waited for
    /// past it: the peer's own actor answers, and one that stops with the request in its mailbox
    /// (the peer removed meanwhile, or stopped past its failure limit) never does while the tunnel
    /// runs on. No `wg` command asks it (a get reads <see cref="GetDeviceStatusAsync"/>).
    /// </summary>
    public async Task<PeerStatus?> GetPeerStatusAsync(WireGuardKey publicKey, CancellationToken cancellationToken = default) =>
        await Tunnel.Ask<object>(new GetPeerStatus(publicKey), timeout, cancellationToken).ConfigureAwait(false) as PeerStatus;

    /// <summary>
    /// The answer of <paramref name="ask"/> (an Ask without a bound of its own, ended by the token it
    /// is given) however long it takes while the tunnel runs; null when the tunnel stopped first (a
    /// tunnel that failed never answers); <see cref="OperationCanceledException"/> when
    /// <paramref name="cancellationToken"/> ended the wait. <paramref name="late"/> is told once at
    /// <paramref name="bound"/>. The tunnel is watched from the start: one that had already stopped
    /// ends the wait at once (watched only after the bound, as before, a request that reached a
    /// stopped tunnel waited the whole bound for nothing).
    /// </summary>
    private async Task<T?> AnswerWhileRunningAsync<T>(Func<CancellationToken, Task<T>> ask, TimeSpan bound, Action<TimeSpan>? late, CancellationToken cancellationToken)
        where T : class
    {
        using var asking = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            var answer = ask(asking.Token);
            var ended = Tunnel.WatchAsync(asking.Token);
            var first = Task.WhenAny(answer, ended);
            try
            {
                await first.WaitAsync(bound, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                late?.Invoke(bound);
                await first.ConfigureAwait(false);
            }
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

    /// <summary>Starts a handshake with the peer now unless one is in flight (fire and forget).</summary>
    public void Connect(WireGuardKey publicKey) => Tunnel.Tell(new ConnectPeer(publicKey));

    /// <summary>After a new listen port: every peer with a session sends a keepalive (<see cref="Peers.SendKeepalivesOnSessions"/>).</summary>
    public void SendKeepalivesOnSessions() => Tunnel.Tell(Peers.SendKeepalivesOnSessions.Instance);
}
