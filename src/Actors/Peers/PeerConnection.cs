using Akka.Actor;
using Akka.Event;
using Firezone.Actors.Actors.Batches;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Time;
using Firezone.Actors.Actors.Tun;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Packets;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// One peer (one Gateway connection): a thin shell over that peer's engine state machine.
/// Outbound (<see cref="OutboundPackets"/>): copy-in (RFC 6040 section 4.1: outer ECN from the
/// inner header, per the peer's <see cref="EcnMode"/>), seal in place, and send every sealed
/// datagram plus whatever the engine wants to transmit as ONE <see cref="SendDatagrams"/>.
/// Inbound (<see cref="InboundDatagrams"/>): open (the engine checks the inner source against the
/// peer's allowed IPs), copy-out (RFC 6040 section 4.2, may drop), and hand the inner packets to
/// the TunWriter as ONE <see cref="WritePackets"/>.
/// The engine's timers (whitepaper section 6) are driven by a single keyed timer set to
/// PollTimeout after every message (never later than the engine's earliest deadline). Every buffer is either passed on or returned; a fault
/// (restart) or stop returns whatever the instance still holds.
/// </summary>
public sealed class PeerConnection : UntypedActor, IWithTimers
{
    private const string TimerKey = "engine-timeout";
    private static readonly TimeSpan UnexpectedEcnLogInterval = TimeSpan.FromSeconds(10);

    private readonly IWireGuardDevice _device;
    private readonly PeerSlot _slot;
    private readonly PeerCounters _counters;
    private readonly IActorRef _socketIO;
    private readonly IActorRef _tunWriter;
    private readonly IMonotonicClock _clock;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private IWireGuardPeer? _peer;
    private PeerConfig _config;
    private PacketBatch? _current;
    private SendDatagrams? _send;
    private WritePackets? _write;
    private TimeSpan? _armed;
    private TimeSpan _nextUnexpectedEcnLog;

    public PeerConnection(IWireGuardDevice device, PeerSlot slot, IActorRef socketIO, IActorRef tunWriter, IMonotonicClock clock)
    {
        _device = device;
        _slot = slot;
        _counters = slot.Counters;
        _socketIO = socketIO;
        _tunWriter = tunWriter;
        _clock = clock;
        _config = slot.Config;
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IWireGuardDevice device, PeerSlot slot, IActorRef socketIO, IActorRef tunWriter, IMonotonicClock clock) =>
        Akka.Actor.Props.Create(() => new PeerConnection(device, slot, socketIO, tunWriter, clock));

    protected override void PreStart()
    {
        // A fresh engine peer on every (re)start: no session, so traffic starts with a fresh handshake.
        _config = _slot.Config;
        _peer = _device.CreatePeer(_config);
        _peer.AttachReplayState(_slot.ReplayState);
        var now = _clock.Now;
        _peer.Start(now);
        // Handshake at once when the endpoint is known, so the first packet does not wait for it
        // (wireguard-go waits for traffic; a restarted peer thus re-establishes its session at once).
        if (!_config.Endpoint.IsNone)
        {
            _peer.Connect(now);
        }
        AfterMessage(now);
    }

    protected override void PostStop()
    {
        // Also runs before a restart (default PreRestart): return everything this instance holds.
        _current?.Recycle();
        _current = null;
        _send?.Recycle();
        _send = null;
        _write?.Recycle();
        _write = null;
        _peer?.Dispose();
        _peer = null;
    }

    protected override void OnReceive(object message)
    {
        var now = _clock.Now;
        switch (message)
        {
            case OutboundPackets batch:
                HandleOutbound(batch, now);
                break;
            case InboundDatagrams batch:
                HandleInbound(batch, now);
                break;
            case PeerTimer:
                _armed = null;
                _peer!.HandleTimeout(now);
                break;
            case UpdatePeerConfig update:
                _config = update.Config;
                _peer!.Update(update.Config, now);
                break;
            case ConnectPeer:
                _peer!.Connect(now);
                break;
            case GetPeerStatus:
                PublishEngineView();
                Sender.Tell(PeerStatus.From(_slot, _device.AllowedIpsOf(_slot.Key)));
                return;
            default:
                Unhandled(message);
                return;
        }
        AfterMessage(now);
    }

    private void HandleOutbound(OutboundPackets batch, TimeSpan now)
    {
        var peer = _peer!;
        var mode = _config.EcnMode;
        _current = batch;
        for (int i = 0; i < batch.Count; i++)
        {
            var buffer = batch[i];
            if (buffer is null)
            {
                continue;
            }
            if (IpPacket.TryGetEcn(buffer.Data, out var inner) != IpParseStatus.Ok)
            {
                _counters.OutboundInvalid++;
                batch.Take(i)!.Return();
                continue;
            }
            // Copy-in, RFC 6040 section 4.1; only the ECN bits reach the outer header.
            buffer.Ecn = EcnEncapsulation.Outer(inner, mode);
            int length = buffer.Length;
            var result = peer.HandleTunPacket(buffer, now);
            // Taken only after the call: if the engine throws, the slot still owns the buffer.
            batch.Take(i);
            switch (result)
            {
                case SealResult.Sealed:
                    _counters.TxPackets++;
                    _counters.TxPacketBytes += length;
                    AddToSend(buffer);
                    break;
                case SealResult.Queued:
                    // The engine owns it now and sends it sealed via PollTransmit after the handshake.
                    _counters.TxPackets++;
                    _counters.TxPacketBytes += length;
                    break;
                default:
                    _counters.OutboundDropped++;
                    buffer.Return();
                    break;
            }
        }
        _current = null;
        batch.Recycle();
    }

    private void HandleInbound(InboundDatagrams batch, TimeSpan now)
    {
        var peer = _peer!;
        _current = batch;
        for (int i = 0; i < batch.Count; i++)
        {
            var datagram = batch[i];
            if (datagram is null)
            {
                continue;
            }
            switch (MessageHeader.Classify(datagram.Data, out _))
            {
                case MessageType.TransportData:
                {
                    var result = peer.HandleTransportData(datagram, now);
                    batch.Take(i);
                    HandleOpened(datagram, result);
                    break;
                }
                case MessageType.Response:
                {
                    // Responses carry mac1 like initiations (whitepaper section 5.3); cookies are
                    // only demanded of initiations, so never "under load" here.
                    var admission = _device.AdmitHandshake(datagram, underLoad: false, now, out var cookieReply);
                    if (cookieReply is not null)
                    {
                        AddToSend(cookieReply);
                    }
                    if (admission == HandshakeAdmission.Accept)
                    {
                        CountHandshake(peer.HandleHandshakeMessage(datagram, now));
                    }
                    else
                    {
                        _counters.HandshakesRejected++;
                    }
                    batch.Take(i)!.Return();
                    break;
                }
                case MessageType.Initiation:
                case MessageType.CookieReply:
                    // Initiations arrive here already admitted by the PeerSupervisor.
                    CountHandshake(peer.HandleHandshakeMessage(datagram, now));
                    batch.Take(i)!.Return();
                    break;
                default:
                    _counters.MalformedRejected++;
                    batch.Take(i)!.Return();
                    break;
            }
        }
        _current = null;
        batch.Recycle();
    }

    private void CountHandshake(HandshakeResult result)
    {
        if (result != HandshakeResult.Accepted)
        {
            _counters.HandshakesRejected++;
        }
    }

    private void HandleOpened(PacketBuffer datagram, OpenResult result)
    {
        switch (result)
        {
            case OpenResult.Packet:
                if (datagram.Ecn == Ecn.Ce)
                {
                    _counters.CeDatagramsReceived++;
                }
                DeliverInner(datagram);
                return;
            case OpenResult.Keepalive:
                if (datagram.Ecn == Ecn.Ce)
                {
                    _counters.CeDatagramsReceived++;
                }
                break;
            case OpenResult.AuthenticationFailed:
                _counters.AuthenticationFailures++;
                break;
            case OpenResult.Replayed:
                _counters.ReplayedRejected++;
                break;
            case OpenResult.NoKeypair:
                _counters.NoKeypairRejected++;
                break;
            case OpenResult.SourceNotAllowed:
                _counters.SourceNotAllowedRejected++;
                break;
            default:
                _counters.MalformedRejected++;
                break;
        }
        datagram.Return();
    }

    /// <summary>Copy-out, RFC 6040 section 4.2, then on to the TUN writer.</summary>
    private void DeliverInner(PacketBuffer packet)
    {
        if (_config.EcnMode != EcnMode.Off)
        {
            var data = packet.Data;
            var outer = packet.Ecn;
            if (IpPacket.TryGetEcn(data, out var before) == IpParseStatus.Ok)
            {
                var result = IpPacket.ApplyDecapsulation(data, outer, out _);
                if (result.IsUnexpected)
                {
                    _counters.EcnUnexpected++;
                    LogUnexpectedEcn(before, outer, result.IsDrop);
                }
                if (result.IsDrop)
                {
                    // Not-ECT inner, CE outer: the congestion signal cannot be passed on, so drop.
                    _counters.EcnDrops++;
                    packet.Return();
                    return;
                }
                if (result.Inner == Ecn.Ce && before != Ecn.Ce)
                {
                    _counters.CeMarksPropagated++;
                }
            }
        }
        _counters.RxPackets++;
        _counters.RxPacketBytes += packet.Length;
        var write = _write ??= WritePackets.Rent();
        write.Add(packet);
        if (write.IsFull)
        {
            _tunWriter.Tell(write, Self);
            _write = null;
        }
    }

    private void LogUnexpectedEcn(Ecn inner, Ecn outer, bool dropped)
    {
        // RFC 6040 section 4.2: (!!!) combinations should be logged; rate-limited so a
        // misbehaving path cannot flood the log (and no formatting per packet otherwise).
        var now = _clock.Now;
        if (now < _nextUnexpectedEcnLog || !_log.IsWarningEnabled)
        {
            return;
        }
        _nextUnexpectedEcnLog = now + UnexpectedEcnLogInterval;
        _log.Warning("peer {0}: unexpected ECN combination inner {1} / outer {2} (RFC 6040 section 4.2 (!!!)){3}; {4} such packets so far",
            _slot.KeyBase64, inner, outer, dropped ? ", packet dropped" : "", PeerCounters.Read(ref _counters.EcnUnexpected));
    }

    private void AddToSend(PacketBuffer datagram)
    {
        _counters.CountDatagramSent(datagram.Ecn);
        var send = _send ??= SendDatagrams.Rent();
        send.Add(datagram);
        if (send.IsFull)
        {
            _socketIO.Tell(send, Self);
            _send = null;
        }
    }

    /// <summary>After every message: drain the engine's output, flush both batches, re-arm the timer.</summary>
    private void AfterMessage(TimeSpan now)
    {
        var peer = _peer!;
        while (peer.PollTransmit(out var datagram))
        {
            AddToSend(datagram);
        }
        if (_send is not null)
        {
            _socketIO.Tell(_send, Self);
            _send = null;
        }
        if (_write is not null)
        {
            _tunWriter.Tell(_write, Self);
            _write = null;
        }
        // Re-arm only when the engine wants to be woken earlier than the armed timer. A later or
        // absent deadline leaves the armed timer to fire early: HandleTimeout then finds nothing
        // due and the timer is re-armed for the real deadline. Deadlines move with almost every
        // packet (keepalive, new-handshake timers), so this keeps the scheduler off the hot path.
        var deadline = peer.PollTimeout();
        if (deadline is { } due && (_armed is null || due < _armed.Value))
        {
            var delay = due - now;
            Timers.StartSingleTimer(TimerKey, PeerTimer.Instance, delay < TimeSpan.Zero ? TimeSpan.Zero : delay);
            _armed = due;
        }
        PublishEngineView();
    }

    private void PublishEngineView()
    {
        var peer = _peer!;
        _counters.Publish(peer.Endpoint, peer.LastHandshakeUtc, peer.RxBytes, peer.TxBytes);
    }
}
