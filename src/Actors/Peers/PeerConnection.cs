using Akka.Actor;
using Akka.Event;
using Firezone.Actors.Actors.Batches;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Time;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// One peer (one Gateway connection): the owner of that peer's <see cref="PeerDataPath"/>, which
/// applies the ECN copy-in and copy-out rules around the engine's seal and open. Each (re)start
/// makes a fresh engine peer and path and attaches it to the <see cref="PeerSlot"/>, where the
/// reader threads find and step it; PostStop detaches and closes it, so a restart is a fresh
/// handshake and a fault stays with this peer.
///
/// The actor steps the path itself for what reaches its mailbox: initiations from the
/// PeerSupervisor, and the <see cref="OutboundPackets"/> and <see cref="InboundDatagrams"/> a reader
/// thread did not step itself (this peer's backlog, its lock held by another thread, or a closed
/// path during a restart; see PeerGroups). Its output goes to SocketIO and the TunWriter as
/// one batch each, counted in the peer's backlog until sent or written.
/// The engine's timers (whitepaper section 6) are driven by a single keyed timer, set to the
/// engine's PollTimeout whenever a step moves that earlier (<see cref="RearmPeerTimer"/> when a reader
/// thread did the step). A fault on a reader thread arrives as <see cref="PeerPathFaulted"/> and is
/// rethrown, so the supervisor decides as for any other fault.
/// </summary>
public sealed class PeerConnection : UntypedActor, IWithTimers
{
    private const string TimerKey = "engine-timeout";

    private readonly IWireGuardDevice _device;
    private readonly PeerSlot _slot;
    private readonly IActorRef _socketIO;
    private readonly IActorRef _tunWriter;
    private readonly IMonotonicClock _clock;
    // The supervisor's: a logging adapter of its own costs each peer about 200 bytes (issue 8 item 4),
    // and the lines name the peer's key anyway.
    private readonly ILoggingAdapter _log;
    private PeerDataPath? _path;
    private ActorPeerOutput? _output;
    private bool _restarted;
    private readonly Handovers _handovers;

    /// <summary>Where a stopping peer hands its sessions over, and where a new one takes them from (see <see cref="PeerHandovers"/>).</summary>
    public readonly record struct Handovers(PeerHandovers? To, PeerHandovers? From);

    public PeerConnection(IWireGuardDevice device, PeerSlot slot, IActorRef socketIO, IActorRef tunWriter, IMonotonicClock clock, ILoggingAdapter log,
        Handovers handovers = default)
    {
        _handovers = handovers;
        _log = log;
        _device = device;
        _slot = slot;
        _socketIO = socketIO;
        _tunWriter = tunWriter;
        _clock = clock;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IWireGuardDevice device, PeerSlot slot, IActorRef socketIO, IActorRef tunWriter, IMonotonicClock clock, ILoggingAdapter log,
        Handovers handovers = default) =>
        Akka.Actor.Props.Create(() => new PeerConnection(device, slot, socketIO, tunWriter, clock, log, handovers));

    protected override void PreStart()
    {
        // Before the configuration (see PeerSlot.EndpointMovesTold): the moves it holds for sure.
        long endpointMovesTold = _slot.EndpointMovesTold;
        var config = _slot.Config;
        // The first instance in a tunnel rebuilt with the same key goes on with the sessions its
        // predecessor handed over (never a restart after a fault: that one starts afresh). Taken
        // before anything that can refuse this start, so that a refused first start (which stops
        // the peer for good, PeerSupervisor.Decide) disposes them: left in the collection, they
        // stayed held, with their keys and the receiver indices the host reserved for them, until
        // the next rebuild.
        Engine.WireGuard.PeerHandover? handover = null;
        if (!_restarted && _handovers.From is { } from && from.TryTake(config.PublicKey, out var taken))
        {
            handover = taken;
        }
        IWireGuardPeer? peer = null;
        _output = new ActorPeerOutput(_slot, _socketIO, _tunWriter, Self);
        try
        {
            // A fresh engine peer on every (re)start: no session, so traffic starts with a fresh handshake.
            peer = _device.CreatePeer(config);
            peer.AttachReplayState(_slot.ReplayState);
            // A restarted instance sends where its predecessor last did, not to the configured
            // endpoint (or none, as a Gateway has for its Clients): that is where the peer is. It
            // sends from the local address the peer contacted, as its predecessor did.
            // Unless an update named the endpoint and its predecessor's path never applied it (closed
            // by a fault first): then the configured one, as acknowledged.
            var (endpoint, localAddress) = _slot.Counters.ReadLastPath();
            if (!_slot.TakeEndpointNamed())
            {
                peer.RestoreEndpoint(endpoint, localAddress);
            }
            _path = new PeerDataPath(_device, peer, _slot, config, Self, _log, _handovers.To);
        }
        catch
        {
            peer?.Dispose();
            handover?.Dispose(); // zeroes the keys and frees the reserved indices
            throw;
        }
        var now = _clock.Now;
        bool tookOver = handover is not null && _path.TakeOver(handover, now);
        // A restarted instance replaces one that may have had a session; a fresh one handshakes at
        // once only when the supervisor says the peer had one (a rebuilt tunnel) and it took none over.
        _path.Start(now, _output, handshake: _restarted | (_slot.TakeHandshakeAtStart() && !tookOver));
        AfterMessage(now);
        _slot.EndpointMovesSettled(endpointMovesTold);
        // Only now may the reader threads step it.
        _slot.Attach(_path);
    }

    protected override void PostRestart(Exception reason)
    {
        _restarted = true;
        base.PostRestart(reason); // PreStart
    }

    protected override void PostStop()
    {
        // Also runs before a restart (default PreRestart): detach first, so the reader threads fall
        // back to this actor's mailbox (the next instance) instead of a closed path.
        if (_path is { } path)
        {
            _slot.Detach(path);
            path.Close();
            _path = null;
        }
        _output?.Release();
        _output = null;
    }

    protected override void OnReceive(object message)
    {
        var now = _clock.Now;
        var path = _path!;
        var output = _output!;
        switch (message)
        {
            case PacketBatch batch when batch is OutboundPackets or InboundDatagrams:
            {
                // Counted in the backlog by the reader that told it; it leaves the backlog only after
                // this step's own batches have entered it (AfterMessage), also when the step throws.
                var backlog = batch.Backlog;
                int packets = batch.BacklogPackets; // the step recycles the batch
                try
                {
                    path.Handle(batch, now, output);
                    AfterMessage(now);
                }
                finally
                {
                    backlog?.ExitBacklog(packets);
                }
                return;
            }
            case PeerTimer:
                path.HandleTimeout(now, output);
                break;
            case RearmPeerTimer:
                break;
            case UpdatePeerConfig update:
                // A closed path (a fault, the restart follows) skipped it: the move stays pending
                // until the restart's fresh engine peer, made from the configuration, settles it.
                if (path.Update(update.Config, update.EndpointNamed, now, output))
                {
                    _slot.EndpointMoveApplied(update.EndpointMove);
                }
                break;
            case ConnectPeer:
                path.Connect(now, output);
                break;
            case SendKeepalivesOnSessions:
                path.SendKeepaliveOnSession(now, output);
                break;
            case PeerPathFaulted faulted:
                if (!ReferenceEquals(faulted.Path, path))
                {
                    _log.Debug("peer {PublicKey}: a fault of a path already replaced by a restart is not counted again", _slot.KeyBase64);
                    return;
                }
                faulted.Error.Throw();
                return;
            case GetPeerStatus:
                path.PublishEngineView();
                Sender.Tell(PeerStatus.From(_slot, _device.AllowedIpsOf(_slot.Key)));
                return;
            default:
                Unhandled(message);
                return;
        }
        AfterMessage(now);
    }

    /// <summary>After every message: hand on the collected batches and re-arm the timer if a step asked.</summary>
    private void AfterMessage(TimeSpan now)
    {
        _output!.Flush();
        if (_path!.TakeTimerRequest(out var due))
        {
            var delay = due - now;
            Timers.StartSingleTimer(TimerKey, PeerTimer.Instance, delay < TimeSpan.Zero ? TimeSpan.Zero : delay);
        }
    }
}
