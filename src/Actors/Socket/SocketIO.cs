using System.Runtime.ExceptionServices;
using Akka.Actor;
using Akka.Event;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Socket;

/// <summary>
/// Owns the UDP socket. A dedicated receive thread (STYLE.md rule 8) reads batches of datagrams,
/// classifies each by type and size (whitepaper section 5.4) and routes it:
/// initiations to the handshake owner (<see cref="InboundHandshakes"/>); responses, cookie replies and
/// transport data by receiver index to the owning PeerConnection (<see cref="InboundDatagrams"/>,
/// one batch per peer per receive); anything else is dropped and counted.
/// The actor itself sends the <see cref="SendDatagrams"/> batches peers give it, each datagram with
/// its own ECN codepoint, and returns their buffers (the last owner).
/// </summary>
public sealed class SocketIO : UntypedActor
{
    public const int ReceiveBatchSize = 64;

    private readonly IUdpBatchSocket _socket;
    private readonly IWireGuardDevice _device;
    private readonly PeerRegistry _registry;
    private readonly IActorRef _handshakeOwner;
    private readonly TunnelCounters _counters;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly PacketBuffer[] _buffers = new PacketBuffer[ReceiveBatchSize];
    private readonly Dictionary<IActorRef, InboundDatagrams> _groups = new(ReferenceEqualityComparer.Instance);
    private InboundHandshakes? _handshakes;
    private SendDatagrams? _current;
    private Thread? _thread;
    private volatile bool _stopping;
    private IActorRef _self = ActorRefs.Nobody;
    private long _datagramsSent;
    private long _datagramsNotSent;

    public SocketIO(IUdpBatchSocket socket, IWireGuardDevice device, PeerRegistry registry, IActorRef handshakeOwner, TunnelCounters counters)
    {
        _socket = socket;
        _device = device;
        _registry = registry;
        _handshakeOwner = handshakeOwner;
        _counters = counters;
    }

    public static Props Props(IUdpBatchSocket socket, IWireGuardDevice device, PeerRegistry registry, IActorRef handshakeOwner, TunnelCounters counters) =>
        Akka.Actor.Props.Create(() => new SocketIO(socket, device, registry, handshakeOwner, counters));

    protected override void PreStart()
    {
        _self = Self;
        _thread = new Thread(ReceiveLoop) { IsBackground = true, Name = "udp-receiver " + _socket.LocalPort };
        _thread.Start();
    }

    protected override void PostStop()
    {
        _current?.Recycle();
        _current = null;
        _stopping = true;
        _socket.WakeReceiver();
        if (_thread is not null && !_thread.Join(TimeSpan.FromSeconds(5)))
        {
            _log.Error("UDP receive thread for port {0} did not stop within 5 s after WakeReceiver", _socket.LocalPort);
        }
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case SendDatagrams batch:
                _current = batch;
                int sent = _socket.SendBatch(batch.AsSpan());
                _datagramsSent += sent;
                _datagramsNotSent += batch.Count - sent;
                _current = null;
                batch.Recycle();
                break;
            case IoThreadFailed failed:
                failed.Error.Throw();
                break;
            case GetSocketStatus:
                Sender.Tell(new SocketStatus(_socket.LocalPort, _datagramsSent, _datagramsNotSent));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void ReceiveLoop()
    {
        int held = 0;
        try
        {
            while (!_stopping)
            {
                while (held < ReceiveBatchSize && _device.Pool.TryRent(out var buffer))
                {
                    _buffers[held++] = buffer;
                }
                if (held == 0)
                {
                    Interlocked.Increment(ref _counters.PoolExhausted);
                    Thread.Sleep(1);
                    continue;
                }
                int received = _socket.ReceiveBatch(_buffers.AsSpan(0, held));
                if (received <= 0)
                {
                    continue;
                }
                for (int i = 0; i < received; i++)
                {
                    // Ownership moves to Route (a group, or back to the pool): the cleanup below must
                    // not return this buffer a second time. Route can only throw before it hands the
                    // buffer on (lookups, renting a group), so on a throw it is still ours to return.
                    var buffer = _buffers[i];
                    _buffers[i] = null!;
                    try
                    {
                        Route(buffer);
                    }
                    catch
                    {
                        buffer.Return();
                        throw;
                    }
                }
                int left = held - received;
                Array.Copy(_buffers, received, _buffers, 0, left);
                Array.Clear(_buffers, left, received);
                held = left;
                Flush();
            }
        }
        catch (Exception e)
        {
            ReportFailure(e);
        }
        finally
        {
            // A plain thread: an exception escaping here would end the process. Report it instead.
            try
            {
                for (int i = 0; i < held; i++)
                {
                    _buffers[i]?.Return();
                    _buffers[i] = null!;
                }
                foreach (var pair in _groups)
                {
                    pair.Value.Recycle();
                }
                _groups.Clear();
                _handshakes?.Recycle();
                _handshakes = null;
            }
            catch (Exception e)
            {
                ReportFailure(e);
            }
        }
    }

    private void ReportFailure(Exception e)
    {
        if (!_stopping)
        {
            _self.Tell(new IoThreadFailed(ExceptionDispatchInfo.Capture(e)));
        }
    }

    private void Route(PacketBuffer datagram)
    {
        switch (MessageHeader.Classify(datagram.Data, out uint receiverIndex))
        {
            case MessageType.Initiation:
                (_handshakes ??= InboundHandshakes.Rent()).Add(datagram);
                return;
            case MessageType.Response:
            case MessageType.CookieReply:
            case MessageType.TransportData:
                if (_device.TryLookupIndex(receiverIndex, out WireGuardKey owner) && _registry.TryGet(owner, out var connection))
                {
                    if (!_groups.TryGetValue(connection, out var batch))
                    {
                        batch = InboundDatagrams.Rent();
                        _groups.Add(connection, batch);
                    }
                    batch.Add(datagram);
                    return;
                }
                Interlocked.Increment(ref _counters.DatagramsUnknownReceiver);
                datagram.Return();
                return;
            default:
                Interlocked.Increment(ref _counters.DatagramsInvalid);
                datagram.Return();
                return;
        }
    }

    private void Flush()
    {
        foreach (var pair in _groups)
        {
            // Removed before it is sent (allowed during enumeration since .NET Core 3.0): a batch
            // already handed to its actor must never be recycled here too if a later Tell throws.
            _groups.Remove(pair.Key);
            pair.Key.Tell(pair.Value, ActorRefs.NoSender);
        }
        if (_handshakes is { } handshakes)
        {
            _handshakes = null;
            _handshakeOwner.Tell(handshakes, ActorRefs.NoSender);
        }
    }
}

/// <summary>Ask SocketIO for <see cref="SocketStatus"/>.</summary>
public sealed class GetSocketStatus
{
    public static readonly GetSocketStatus Instance = new();
    private GetSocketStatus() { }
}

public sealed record SocketStatus(int LocalPort, long DatagramsSent, long DatagramsNotSent);
