using System.Runtime.ExceptionServices;
using Akka.Actor;
using Akka.Event;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Tun;

/// <summary>
/// Owns the TUN read loop on a dedicated thread (STYLE.md rule 8: no blocking call on the shared
/// dispatcher). Each read fills up to <see cref="ReadBatchSize"/> pooled buffers; every packet is
/// routed by its destination address through the allowed-IPs table (whitepaper section 2) to its
/// peer's PeerConnection, and each peer gets ONE <see cref="OutboundPackets"/> per read. Packets
/// for no peer, and packets that are not IP, are dropped (buffer returned) and counted.
///
/// Stop: <see cref="ITunDevice.WakeReader"/> and join the thread in PostStop. If ReadBatch throws
/// (the device is gone) the thread tells the actor, which rethrows so TunnelActor escalates.
/// </summary>
public sealed class TunReader : UntypedActor
{
    public const int ReadBatchSize = 64;

    private readonly ITunDevice _tun;
    private readonly IWireGuardDevice _device;
    private readonly PeerRegistry _registry;
    private readonly TunnelCounters _counters;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly PacketBuffer[] _buffers = new PacketBuffer[ReadBatchSize];
    // Per read: destination PeerConnection -> its batch. Reference equality on IActorRef; reused.
    private readonly Dictionary<IActorRef, OutboundPackets> _groups = new(ReferenceEqualityComparer.Instance);
    private Thread? _thread;
    private volatile bool _stopping;
    private IActorRef _self = ActorRefs.Nobody;

    public TunReader(ITunDevice tun, IWireGuardDevice device, PeerRegistry registry, TunnelCounters counters)
    {
        _tun = tun;
        _device = device;
        _registry = registry;
        _counters = counters;
    }

    public static Props Props(ITunDevice tun, IWireGuardDevice device, PeerRegistry registry, TunnelCounters counters) =>
        Akka.Actor.Props.Create(() => new TunReader(tun, device, registry, counters));

    protected override void PreStart()
    {
        _self = Self;
        _thread = new Thread(ReadLoop) { IsBackground = true, Name = "tun-reader " + _tun.Name };
        _thread.Start();
    }

    protected override void PostStop()
    {
        _stopping = true;
        _tun.WakeReader();
        if (_thread is not null && !_thread.Join(TimeSpan.FromSeconds(5)))
        {
            _log.Error("TUN reader thread for {0} did not stop within 5 s after WakeReader", _tun.Name);
        }
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case IoThreadFailed failed:
                failed.Error.Throw();
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void ReadLoop()
    {
        int held = 0; // _buffers[0..held) are rented and ours
        try
        {
            while (!_stopping)
            {
                while (held < ReadBatchSize && _device.Pool.TryRent(out var buffer))
                {
                    _buffers[held++] = buffer;
                }
                if (held == 0)
                {
                    // Every buffer is in flight: back-pressure instead of unbounded memory.
                    Interlocked.Increment(ref _counters.PoolExhausted);
                    Thread.Sleep(1);
                    continue;
                }
                int read = _tun.ReadBatch(_buffers.AsSpan(0, held));
                if (read <= 0)
                {
                    continue;
                }
                for (int i = 0; i < read; i++)
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
                // Keep the unread buffers for the next read.
                int left = held - read;
                Array.Copy(_buffers, read, _buffers, 0, left);
                Array.Clear(_buffers, left, read);
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

    private void Route(PacketBuffer buffer)
    {
        var data = buffer.Data;
        ReadOnlySpan<byte> destination;
        // Only the version nibble and the destination are needed to route; the PeerConnection
        // reads the ECN field and the engine checks the rest.
        switch (data.IsEmpty ? 0 : data[0] >> 4)
        {
            case 4 when data.Length >= 20:
                destination = data.Slice(16, 4);
                break;
            case 6 when data.Length >= 40:
                destination = data.Slice(24, 16);
                break;
            default:
                Interlocked.Increment(ref _counters.TunPacketsInvalid);
                buffer.Return();
                return;
        }
        if (!_device.TryRoute(destination, out WireGuardKey key) || !_registry.TryGet(key, out var connection))
        {
            Interlocked.Increment(ref _counters.TunPacketsNoRoute);
            buffer.Return();
            return;
        }
        if (!_groups.TryGetValue(connection, out var batch))
        {
            batch = OutboundPackets.Rent();
            _groups.Add(connection, batch);
        }
        batch.Add(buffer);
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
    }
}
