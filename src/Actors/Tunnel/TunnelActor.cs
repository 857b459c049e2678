using Akka.Actor;
using Akka.Event;
using Firezone.Actors.Actors.Io;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Tun;
using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Tunnel;

/// <summary>
/// The top of one tunnel: creates TunWriter, SocketIO, PeerSupervisor and TunReader, forwards the
/// control messages (AddOrUpdatePeer, RemovePeer, RemoveAllPeers, GetDeviceStatus, GetPeerStatus,
/// ConnectPeer) to the PeerSupervisor, and forwards initiations from SocketIO to it.
/// Loss of the TUN device or the socket (any failure of an I/O actor) is not retried: the tunnel
/// tells <see cref="TunnelSettings.FailureListener"/> <see cref="TunnelFailed"/> and stops itself,
/// so the host exits with a clear error (STYLE.md rule 9).
/// </summary>
public sealed class TunnelActor : UntypedActor
{
    private readonly TunnelSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly TunnelCounters _counters;
    private readonly PeerRegistry _registry = new();
    private readonly ReaderPair _readers = new();
    private IActorRef _self = ActorRefs.Nobody;
    private IActorRef _tunWriter = ActorRefs.Nobody;
    private IActorRef _socketIO = ActorRefs.Nobody;
    private IActorRef _peers = ActorRefs.Nobody;
    private IActorRef _tunReader = ActorRefs.Nobody;
    private bool _failed;
    // StopReading: who asked, and which of the two readers are still running.
    private List<IActorRef>? _stopReadingAskers;
    private bool _tunReading = true;
    private bool _socketReading = true;

    public TunnelActor(TunnelSettings settings)
    {
        _settings = settings;
        _counters = settings.Counters ?? new TunnelCounters();
    }

    public static Props Props(TunnelSettings settings) => Akka.Actor.Props.Create(() => new TunnelActor(settings));

    // No logging by the strategy: OnChildFailure's IoLost logs the reason once, in words for the user.
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(-1, -1, OnChildFailure, loggingEnabled: false);

    protected override void PreStart()
    {
        _self = Self;
        var s = _settings;
        _counters.Tun = s.Tun;
        _counters.Socket = s.Socket;
        // Blocking I/O on a message: on their own threads (see Tunnels.IoDispatcherId).
        Tunnels.EnsureIoDispatcher(Context.System);
        _tunWriter = Context.ActorOf(TunWriter.Props(s.Tun, _counters).WithDispatcher(Tunnels.IoDispatcherId), "tun-writer");
        // Initiations come back to this actor and go on to the supervisor (created next).
        _socketIO = Context.ActorOf(SocketIO.Props(s.Socket, s.Tun, s.Device, _registry, Self, _counters, s.Clock, _readers, s.ReplyPollMax, s.ReadModeration, s.StartReadingPaused, s.ReaderStopBound).WithDispatcher(Tunnels.IoDispatcherId), "socket-io");
        _peers = Context.ActorOf(PeerSupervisor.Props(s.Device, _registry, _socketIO, _tunWriter, s.Clock, _counters, s.PeerOptions, () => s.Socket.LocalPort, s.HandOverTo, s.TakeOverFrom), "peers");
        // Its stop joins its reader thread (up to TunnelSettings.ReaderStopBound, Tunnels.ReaderStopBound): on its own thread too, so
        // that a reader busy in a read never holds a thread of the default dispatcher the peers share.
        _tunReader = Context.ActorOf(TunReader.Props(s.Tun, s.Socket, s.Device, _registry, _counters, s.Clock, _readers, s.ReplyPollMax, s.ReadModeration, s.StartReadingPaused, s.ReaderStopBound).WithDispatcher(Tunnels.IoDispatcherId), "tun-reader");
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case InboundHandshakes:
            case AddOrUpdatePeer:
            case RemovePeer:
            case RemoveAllPeers:
            case ApplyPeerChanges:
            case GetDeviceStatus:
            case GetPeerStatus:
            case ConnectPeer:
            case SendKeepalivesOnSessions:
                _peers.Forward(message);
                break;
            case StartReading:
                _tunReader.Tell(message);
                _socketIO.Tell(message);
                break;
            case StopReading:
                StartStopReading(Sender);
                break;
            case Terminated terminated when terminated.ActorRef.Equals(_tunReader):
                _tunReading = false;
                AnswerIfReadingStopped();
                break;
            case ReceivingStopped:
                _socketReading = false;
                AnswerIfReadingStopped();
                break;
            case GetTunnelTopology:
                Sender.Tell(new TunnelTopology(_tunReader, _tunWriter, _socketIO, _peers, _registry, _counters));
                break;
            case IoLost lost:
                if (_failed)
                {
                    break;
                }
                _failed = true;
                if (lost.Failure.DeviceRemoved)
                {
                    _log.Info("tunnel stopping: {Reason}", lost.Failure.Reason);
                }
                else
                {
                    _log.Error("tunnel stopping: {Reason}", lost.Failure.Reason);
                }
                _settings.FailureListener?.Tell(lost.Failure);
                Context.Stop(Self);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>
    /// Stops the TUN reader actor and SocketIO's receive thread, so that what arrives from now on
    /// waits in the kernel's queues for the tunnel that replaces this one, instead of being read by
    /// readers whose peers are stopping (and lost). The peers, SocketIO's sending and the TunWriter
    /// go on, so what was read is still sent or written.
    /// </summary>
    private void StartStopReading(IActorRef asker)
    {
        if (_stopReadingAskers is { } askers)
        {
            askers.Add(asker);
            AnswerIfReadingStopped();
            return;
        }
        _stopReadingAskers = [asker];
        Context.Watch(_tunReader);
        Context.Stop(_tunReader);
        _socketIO.Tell(StopReceiving.Instance);
    }

    private void AnswerIfReadingStopped()
    {
        if (_tunReading || _socketReading || _stopReadingAskers is not { } askers)
        {
            return;
        }
        foreach (var asker in askers)
        {
            asker.Tell(ReadingStopped.Instance);
        }
        askers.Clear();
    }

    private Directive OnChildFailure(Exception cause)
    {
        // Runs in this actor's context. Every child here does I/O or owns the peers: none is worth
        // a silent retry, the host must know.
        var reason = cause switch
        {
            TunDeviceException tun => "TUN device lost: " + tun.Message,
            UdpSocketException udp => "UDP socket failed: " + udp.Message,
            ActorInitializationException { InnerException: TunDeviceException tun } => "TUN device lost: " + tun.Message,
            ActorInitializationException { InnerException: UdpSocketException udp } => "UDP socket failed: " + udp.Message,
            _ => "internal failure: " + cause.GetType().Name + ": " + cause.Message,
        };
        if (cause is not (TunDeviceException or UdpSocketException or ActorInitializationException { InnerException: TunDeviceException or UdpSocketException }))
        {
            // A bug, not a lost device: the stack trace is what a report needs (the strategy's own
            // logging is off, so that a lost device is one line in words).
            _log.Error(cause, "a tunnel actor failed: {Reason}", reason);
        }
        bool removed = cause is TunDeviceException { DeviceGone: true } or ActorInitializationException { InnerException: TunDeviceException { DeviceGone: true } };
        _self.Tell(new IoLost(new TunnelFailed(reason, cause, removed)));
        return Directive.Stop;
    }

    private sealed record IoLost(TunnelFailed Failure);
}

/// <summary>
/// Tell the TunnelActor of a tunnel started with <see cref="TunnelSettings.StartReadingPaused"/> to
/// start reading the TUN device and the socket (it passes this on to the TunReader and SocketIO).
/// </summary>
public sealed class StartReading
{
    public static readonly StartReading Instance = new();
    private StartReading() { }
}

/// <summary>
/// Ask the TunnelActor to stop reading the TUN device and the socket before it is stopped for a
/// rebuild (answered <see cref="ReadingStopped"/>): packets and datagrams that arrive meanwhile stay
/// queued in the kernel for the rebuilt tunnel.
/// </summary>
public sealed class StopReading
{
    public static readonly StopReading Instance = new();
    private StopReading() { }
}

/// <summary>The answer to <see cref="StopReading"/>: both reader threads have ended.</summary>
public sealed class ReadingStopped
{
    public static readonly ReadingStopped Instance = new();
    private ReadingStopped() { }
}

/// <summary>Ask the TunnelActor for its children (diagnostics, tests).</summary>
public sealed class GetTunnelTopology
{
    public static readonly GetTunnelTopology Instance = new();
    private GetTunnelTopology() { }
}

public sealed record TunnelTopology(IActorRef TunReader, IActorRef TunWriter, IActorRef SocketIO, IActorRef Peers, PeerRegistry Registry, TunnelCounters Counters);
