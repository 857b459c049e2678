using Akka.Actor;
using Akka.Event;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Io;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Time;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Socket;

/// <summary>
/// Owns the UDP socket. A dedicated receive thread (STYLE.md rule 8) reads batches of datagrams,
/// classifies each by type and size (whitepaper section 5.4) and routes it:
/// initiations to the handshake owner (<see cref="InboundHandshakes"/>); responses, cookie replies and
/// transport data by receiver index to the owning peer (<see cref="InboundDatagrams"/>, one batch per
/// peer per receive, or several in order for a peer with more than a batch holds). The thread steps each peer's <see cref="PeerDataPath"/> itself, writing the
/// decrypted packets to the TUN device (one thread wake-up per packet, see PeerDataPath for why);
/// a peer it cannot step right now goes to its PeerConnection actor (see PeerGroups). Anything else
/// is dropped and counted.
/// The actor itself sends the <see cref="SendDatagrams"/> batches the actors give it (handshakes,
/// timers, cookie replies), each datagram with its own ECN codepoint, and returns their buffers.
/// </summary>
public sealed class SocketIO : UntypedActor
{
    /// <summary>
    /// Datagrams per read (several recvmmsg calls while the socket has them queued). Larger than one
    /// recvmmsg of the socket (64) so that with many peers sending, a read holds several packets of
    /// each flow: grouped by peer, they become fewer and larger TUN writes.
    /// </summary>
    public const int ReceiveBatchSize = 256;

    /// <summary>Initiations waiting for the PeerSupervisor at most (wireguard-go's QueueHandshakeSize); more are dropped.</summary>
    public const int MaxQueuedHandshakes = 1024;

    /// <summary>
    /// Cookie replies waiting for this actor to send them at most; beyond it the PeerSupervisor
    /// answers no more initiations until they went out (dropped and counted, as without a free buffer).
    /// Under a flood it makes them faster than a send that waits for room in the socket buffer takes
    /// them, and each holds a pooled buffer: unbounded, they took thousands of the pool's buffers,
    /// which it keeps. wireguard-go sends each from its handshake worker, so its handshake queue bounds them.
    /// </summary>
    public const int MaxQueuedCookieReplies = 1024;

    private readonly IUdpBatchSocket _socket;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly BatchReaderThread<ReceiveSteps> _receiver;
    private readonly TunnelCounters _counters;
    private SendDatagrams? _current;

    private readonly bool _startPaused;
    private readonly TimeSpan _stopBound;

    public SocketIO(IUdpBatchSocket socket, ITunDevice tun, IWireGuardDevice device, PeerRegistry registry, IActorRef handshakeOwner, TunnelCounters counters, IMonotonicClock clock,
        ReaderPair? readers = null, TimeSpan replyPollMax = default, TimeSpan readModeration = default, bool startPaused = false, TimeSpan stopBound = default)
    {
        _startPaused = startPaused;
        _stopBound = stopBound > TimeSpan.Zero ? stopBound : Tunnels.ReaderStopBound;
        _socket = socket;
        _counters = counters;
        var groups = new PeerGroups<InboundDatagrams>(InboundDatagrams.Rent, new DirectPeerOutput(socket, tun, counters));
        var steps = new ReceiveSteps(socket, device, registry, handshakeOwner, counters, clock, groups, Self);
        _receiver = new BatchReaderThread<ReceiveSteps>("udp-receiver " + socket.LocalPort, ReceiveBatchSize, steps, device, counters, Self,
            readers, ReaderPair.Side.Udp, replyPollMax, readModeration);
    }

    /// <param name="readers">Shared with the tunnel's TunReader for reply polling (see BatchReaderThread); null: none.</param>
    /// <param name="replyPollMax">The longest reply poll (see ReplyPoll); zero: none.</param>
    /// <param name="readModeration">The pause after a read of a few bulk packets (see ReadModeration); zero: none.</param>
    /// <param name="stopBound">How long the stop joins the receive thread; zero: <see cref="Tunnels.ReaderStopBound"/>.</param>
    public static Props Props(IUdpBatchSocket socket, ITunDevice tun, IWireGuardDevice device, PeerRegistry registry, IActorRef handshakeOwner, TunnelCounters counters, IMonotonicClock clock,
        ReaderPair? readers = null, TimeSpan replyPollMax = default, TimeSpan readModeration = default, bool startPaused = false, TimeSpan stopBound = default) =>
        Akka.Actor.Props.Create(() => new SocketIO(socket, tun, device, registry, handshakeOwner, counters, clock, readers, replyPollMax, readModeration, startPaused, stopBound));

    protected override void PreStart()
    {
        if (!_startPaused)
        {
            _receiver.Start();
        }
    }

    protected override void PostStop()
    {
        _current?.Recycle();
        _current = null;
        StopReceiver();
    }

    /// <summary>Wakes the receive thread and joins it within the stop bound (<see cref="Tunnels.ReaderStopBound"/>); one that does not end is logged (and stays counted).</summary>
    private void StopReceiver()
    {
        if (!_receiver.Stop(_stopBound))
        {
            _log.Error("UDP receive thread for port {ListenPort} did not stop within {Seconds} s after WakeReceiver", _socket.LocalPort, _stopBound.TotalSeconds);
        }
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case SendDatagrams batch:
                _current = batch;
                int sent = batch.SendOn(_socket);
                _counters.CountSent(sent, batch.Count - sent);
                batch.Backlog?.ExitBacklog(batch.BacklogPackets);
                if (batch.CookieReplies != 0)
                {
                    Interlocked.Add(ref _counters.CookieRepliesQueued, -batch.CookieReplies);
                }
                _current = null;
                batch.Recycle();
                break;
            case IoThreadFailed failed:
                failed.Error.Throw();
                break;
            case ReadsPaused paused:
                _log.Warning(ReadsPaused.LogTemplate, paused.Reader, paused.Leased, paused.MaxBuffers);
                break;
            case ControlDataTruncated cut:
                _log.Warning(ControlDataTruncated.LogTemplate, _socket.LocalPort, cut.Reads);
                break;
            case ReceivesRefused refused:
                _log.Warning(ReceivesRefused.LogTemplate, _socket.LocalPort, refused.Reads, Errno.Describe(refused.LastErrno));
                break;
            case Tunnel.StartReading:
                _receiver.Start();
                break;
            case StopReceiving:
                // On SocketIO's own thread (the I/O dispatcher): the join blocks no shared one.
                StopReceiver();
                Sender.Tell(ReceivingStopped.Instance);
                break;
            case GetSocketStatus:
                Sender.Tell(new SocketStatus(_socket.LocalPort, _counters.DatagramsSentCount, _counters.DatagramsNotSentCount));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>The receive thread's steps: read datagrams, classify and group them by owner.</summary>
    private struct ReceiveSteps(IUdpBatchSocket socket, IWireGuardDevice device, PeerRegistry registry, IActorRef handshakeOwner, TunnelCounters counters, IMonotonicClock clock, PeerGroups<InboundDatagrams> groups,
        IActorRef owner) : IBatchReaderSteps
    {
        private InboundHandshakes? _handshakes;
        private CountedLogRateLimit _controlTruncatedLog;
        private CountedLogRateLimit _refusedLog;

        public readonly bool WaitReadable(int timeoutMs) => socket.WaitReadable(timeoutMs);

        public int TryReadBatch(Span<PacketBuffer> buffers)
        {
            int read = socket.TryReceiveBatch(buffers);
            // Here, not in Flush: a refused read reads nothing, and a pass that read nothing does
            // not flush. A field read per read; the clock only once a read has been refused.
            long refused = socket.ReceiveErrors;
            if (refused != 0 && _refusedLog.TryTake(refused, clock.Now, ReceivesRefused.Interval))
            {
                owner.Tell(new ReceivesRefused(refused, socket.LastReceiveErrno), ActorRefs.NoSender);
            }
            return read;
        }

        public readonly bool OnePacketPerCall => false; // recvmmsg reads what is queued in one call

        public readonly bool HasPending => socket.HasPendingDatagrams;

        public readonly void Kick() => socket.KickReceiver();

        public readonly void Wake() => socket.WakeReceiver();

        public void Route(PacketBuffer datagram)
        {
            switch (MessageHeader.Classify(datagram.Data, out uint receiverIndex))
            {
                case MessageType.Initiation:
                    if (Volatile.Read(ref counters.HandshakesQueued) + (_handshakes?.Count ?? 0) >= MaxQueuedHandshakes)
                    {
                        // The PeerSupervisor is behind (a flood of initiations with a valid mac1): drop,
                        // as wireguard-go drops when its handshake queue is full, rather than let
                        // waiting initiations take the pool's buffers from the data path.
                        Interlocked.Increment(ref counters.HandshakesQueueFull);
                        datagram.Return();
                        return;
                    }
                    if (_handshakes is { IsFull: true } full)
                    {
                        // A read holds up to 256 datagrams, a batch 128 (and the PeerSupervisor
                        // answers a batch with one batch of cookie replies): hand this one on now.
                        _handshakes = null;
                        TellHandshakes(full);
                    }
                    (_handshakes ??= InboundHandshakes.Rent()).Add(datagram);
                    return;
                case MessageType.Response:
                case MessageType.CookieReply:
                case MessageType.TransportData:
                    if (device.TryLookupIndex(receiverIndex, out WireGuardKey owner) && registry.TryGet(owner, out var slot))
                    {
                        groups.Add(slot, datagram);
                        return;
                    }
                    Interlocked.Increment(ref counters.DatagramsUnknownReceiver);
                    datagram.Return();
                    return;
                default:
                    Interlocked.Increment(ref counters.DatagramsInvalid);
                    datagram.Return();
                    return;
            }
        }

        public void Flush()
        {
            groups.Flush(clock.Now);
            if (_handshakes is { } handshakes)
            {
                _handshakes = null;
                TellHandshakes(handshakes);
            }
            // Once per read, a field read; the clock only once the kernel has cut a read.
            long cut = socket.ReceiveControlTruncated;
            if (cut != 0 && _controlTruncatedLog.TryTake(cut, clock.Now, ControlDataTruncated.Interval))
            {
                owner.Tell(new ControlDataTruncated(cut), ActorRefs.NoSender);
            }
        }

        /// <summary>Counted as queued before it is told, so the PeerSupervisor's subtraction never comes first.</summary>
        private readonly void TellHandshakes(InboundHandshakes batch)
        {
            Interlocked.Add(ref counters.HandshakesQueued, batch.Count);
            handshakeOwner.Tell(batch, ActorRefs.NoSender);
        }

        public void Release()
        {
            groups.Release();
            _handshakes?.Recycle();
            _handshakes = null;
        }
    }
}

/// <summary>
/// Stop the receive thread, keep sending (the tunnel stops reading before a rebuild; see
/// <see cref="Tunnel.StopReading"/>); answered <see cref="ReceivingStopped"/>.
/// </summary>
public sealed class StopReceiving
{
    public static readonly StopReceiving Instance = new();
    private StopReceiving() { }
}

/// <summary>The answer to <see cref="StopReceiving"/>.</summary>
public sealed class ReceivingStopped
{
    public static readonly ReceivingStopped Instance = new();
    private ReceivingStopped() { }
}

/// <summary>
/// Told by SocketIO's receive thread to SocketIO when the socket dropped reads whose control data the
/// kernel cut (MSG_CTRUNC, see LinuxUdpSocket.ControlTruncated.cs), with the running count; at most
/// once per <see cref="Interval"/>, and not again until the count moves. Logged at Warning: it means
/// the kernel writes a control message the socket does not make room for, and every such read is lost.
/// </summary>
internal sealed record ControlDataTruncated(long Reads)
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    public const string LogTemplate = "UDP port {ListenPort}: {Reads} reads dropped so far because the kernel cut their control data (MSG_CTRUNC), so their ECN codepoint or GRO segment size may be missing (this line at most every 10 s)";
}

/// <summary>Ask SocketIO for <see cref="SocketStatus"/>.</summary>
public sealed class GetSocketStatus
{
    public static readonly GetSocketStatus Instance = new();
    private GetSocketStatus() { }
}

public sealed record SocketStatus(int LocalPort, long DatagramsSent, long DatagramsNotSent);
