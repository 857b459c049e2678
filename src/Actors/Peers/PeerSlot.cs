using Akka.Actor;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// One configured peer as the supervisor and the reader threads see it, and what survives a
/// PeerConnection restart: the latest configuration (written by the supervisor on AddOrUpdatePeer,
/// read by each fresh instance in PreStart), the cumulative counters, the connection actor and the
/// current instance's <see cref="DataPath"/> (which the reader threads step directly).
/// The engine state itself does not survive: a restarted peer starts with a fresh handshake; only the
/// initiation replay protection (<see cref="ReplayState"/>) carries over, or a replayed old initiation
/// would be accepted by the fresh instance (whitepaper section 5.1).
/// </summary>
public sealed class PeerSlot
{
    private volatile PeerConfig _config;
    // Computed at first use (logs, metric tags): 110 bytes that 10,000 idle peers need not hold.
    private string? _keyBase64;
    private volatile PeerDataPath? _dataPath;
    private int _endpointNamedPending;
    private long _endpointMovesTold;
    private long _endpointMovesApplied;
    private int _backlog;
    private int _backlogPackets;
    private bool _handshakeAtStart;

    public PeerSlot(PeerConfig config)
    {
        _config = config;
        Key = config.PublicKey;
    }

    public WireGuardKey Key { get; }

    /// <summary>Cached for logs and metric tags (a public key, fine to show).</summary>
    public string KeyBase64 => _keyBase64 ??= Key.ToBase64();

    public PeerConfig Config
    {
        get => _config;
        internal set => _config = value;
    }

    public PeerCounters Counters { get; } = new();

    /// <summary>The PeerConnection actor of this peer (set once by whoever creates it, before the slot is registered).</summary>
    public IActorRef Connection { get; internal set; } = ActorRefs.Nobody;

    /// <summary>The running instance's path; null while none runs (starting, restarting, stopped).</summary>
    public PeerDataPath? DataPath => _dataPath;

    /// <summary>Set by a PeerConnection instance in PreStart.</summary>
    internal void Attach(PeerDataPath path) => _dataPath = path;

    /// <summary>Cleared by the instance in PostStop, unless a newer instance already replaced it.</summary>
    internal void Detach(PeerDataPath path) => Interlocked.CompareExchange(ref _dataPath, null, path);

    /// <summary>
    /// True while batches of this peer are on the actor path: told to the PeerConnection and not yet
    /// stepped, or stepped and told to SocketIO or the TunWriter and not yet sent or written. A reader
    /// thread steps a peer itself only when this is false, so its direct sends and writes never
    /// overtake packets still queued on the actor path (no reordering within a flow).
    /// </summary>
    public bool HasBacklog => Volatile.Read(ref _backlog) != 0;

    /// <summary>
    /// Most packets (buffers) of one peer on the actor path at a time, as wireguard-go bounds each
    /// peer's queues (device/queueconstants_default.go: QueueOutboundSize and QueueInboundSize,
    /// 1024): a reader drops what would exceed it (PeerGroups). Without it one slow peer could hold
    /// every buffer of the tunnel's shared pool, and the readers, waiting for buffers, would stall
    /// every other peer.
    /// </summary>
    public const int MaxBacklogPackets = 1024;

    /// <summary>Packets in the batches counted in <see cref="HasBacklog"/>.</summary>
    public int BacklogPackets => Volatile.Read(ref _backlogPackets);

    /// <summary>Marks <paramref name="batch"/> as part of the backlog, just before it is told to an actor.</summary>
    internal void EnterBacklog(Batches.PacketBatch batch)
    {
        batch.Backlog = this;
        batch.BacklogPackets = batch.Count;
        Interlocked.Add(ref _backlogPackets, batch.Count);
        Interlocked.Increment(ref _backlog);
    }

    /// <summary>A batch counted by <see cref="EnterBacklog"/> of <paramref name="packets"/> packets (its count then) is done.</summary>
    internal void ExitBacklog(int packets)
    {
        Interlocked.Add(ref _backlogPackets, -packets);
        Interlocked.Decrement(ref _backlog);
    }

    /// <summary>
    /// Set by the supervisor before the connection starts: the peer had a session in the tunnel this
    /// one replaces, so its first instance handshakes at once (see PeerDataPath.Start).
    /// </summary>
    internal void HandshakeAtStart() => _handshakeAtStart = true;

    /// <summary>Whether the instance starting now should handshake at once; true only for the first one asking.</summary>
    internal bool TakeHandshakeAtStart()
    {
        bool take = _handshakeAtStart;
        _handshakeAtStart = false;
        return take;
    }

    /// <summary>Greatest accepted TAI64N timestamp and last initiation consumption, across restarts.</summary>
    public HandshakeReplayState ReplayState { get; } = new();

    /// <summary>
    /// The supervisor, before it tells the connection an update that names the endpoint (`wg set ...
    /// endpoint E`, a reload): until the path applies it (<see cref="TakeEndpointNamed"/>), a restart
    /// must start from the configured endpoint, not from where the old engine peer last sent. Set
    /// here because a path closed by a fault skips the update, and the restart would otherwise put
    /// the old endpoint back over an acknowledged change.
    /// </summary>
    internal void EndpointNamed() => Volatile.Write(ref _endpointNamedPending, 1);

    /// <summary>Whether an update named the endpoint since the last <see cref="EndpointNamed"/> was taken; clears it.</summary>
    internal bool TakeEndpointNamed() => Interlocked.Exchange(ref _endpointNamedPending, 0) == 1;

    /// <summary>
    /// The supervisor, before it tells the connection an update that moves the peer to its configured
    /// endpoint (<see cref="Config"/>'s, already written): the update's number. Until the connection
    /// has applied it (<see cref="EndpointMoveApplied"/>), <see cref="EndpointMovePending"/>: the
    /// status reports the configured endpoint, as acknowledged, not the one the engine's view still
    /// holds (a UAPI get right after the set showed the old endpoint).
    /// </summary>
    internal long TellEndpointMove() => Interlocked.Increment(ref _endpointMovesTold);

    /// <summary>The connection (its thread only), once the update numbered <paramref name="move"/> is applied and the engine's view published.</summary>
    internal void EndpointMoveApplied(long move)
    {
        if (move > Volatile.Read(ref _endpointMovesApplied))
        {
            Volatile.Write(ref _endpointMovesApplied, move);
        }
    }

    /// <summary>
    /// The moves told so far. Read before <see cref="Config"/>: the supervisor writes the configuration
    /// before it counts the move, so every move counted by then is in the configuration read after.
    /// </summary>
    internal long EndpointMovesTold => Volatile.Read(ref _endpointMovesTold);

    /// <summary>
    /// A (re)started connection, once its fresh engine peer is set up from <see cref="Config"/>:
    /// every move told before it read that configuration (<paramref name="told"/>, <see cref="EndpointMovesTold"/>
    /// read just before) is in what it publishes. A move told since, whose configuration it may not
    /// have seen, stays pending until its update, still in the mailbox, is applied.
    /// </summary>
    internal void EndpointMovesSettled(long told) => EndpointMoveApplied(told);

    /// <summary>Whether an update that moves the endpoint was told and not yet applied.</summary>
    internal bool EndpointMovePending => Volatile.Read(ref _endpointMovesApplied) < Volatile.Read(ref _endpointMovesTold);
}
