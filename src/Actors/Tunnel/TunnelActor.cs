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
    private readonly TunnelCounters _counters = new();
    private readonly PeerRegistry _registry = new();
    private readonly ReaderPair _readers = new();
    private IActorRef _self = ActorRefs.Nobody;
    private IActorRef _tunWriter = ActorRefs.Nobody;
    private IActorRef _socketIO = ActorRefs.Nobody;
    private IActorRef _peers = ActorRefs.Nobody;
    private IActorRef _tunReader = ActorRefs.Nobody;
    private bool _failed;

    public TunnelActor(TunnelSettings settings) => _settings = settings;

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
        _socketIO = Context.ActorOf(SocketIO.Props(s.Socket, s.Tun, s.Device, _registry, Self, _counters, s.Clock, _readers, s.ReplyPollMax, s.ReadModeration).WithDispatcher(Tunnels.IoDispatcherId), "socket-io");
        _peers = Context.ActorOf(PeerSupervisor.Props(s.Device, _registry, _socketIO, _tunWriter, s.Clock, _counters, s.PeerOptions, () => s.Socket.LocalPort), "peers");
        _tunReader = Context.ActorOf(TunReader.Props(s.Tun, s.Socket, s.Device, _registry, _counters, s.Clock, _readers, s.ReplyPollMax, s.ReadModeration), "tun-reader");
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

/// <summary>Ask the TunnelActor for its children (diagnostics, tests).</summary>
public sealed class GetTunnelTopology
{
    public static readonly GetTunnelTopology Instance = new();
    private GetTunnelTopology() { }
}

public sealed record TunnelTopology(IActorRef TunReader, IActorRef TunWriter, IActorRef SocketIO, IActorRef Peers, PeerRegistry Registry, TunnelCounters Counters);
