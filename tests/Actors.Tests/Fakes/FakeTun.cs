using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Tests.Fakes;

/// <summary>
/// An in-memory TUN device (the role of wireguard-go's tuntest): <see cref="Inject"/> plays the
/// kernel sending packets into the tunnel; <see cref="Written"/> collects what the tunnel wrote.
/// ReadBatch blocks on a monitor until packets, a wake or an injected failure arrive.
/// </summary>
public sealed class FakeTun(string name = "faketun0") : ITunDevice
{
    private readonly object _gate = new();
    private readonly Queue<byte[]> _inbound = new();
    private readonly List<byte[]> _written = [];
    private readonly List<string?> _writerThreads = [];
    private bool _woken;
    private Exception? _readFailure;
    private Exception? _writeFailure;

    public string Name { get; } = name;

    public int Mtu => 1420;

    public bool Disposed { get; private set; }

    /// <summary>Queues packets to be read, all visible to the same ReadBatch call.</summary>
    public void Inject(params byte[][] packets)
    {
        lock (_gate)
        {
            foreach (var packet in packets)
            {
                _inbound.Enqueue(packet);
            }
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>The next ReadBatch throws <paramref name="error"/> (the device went away).</summary>
    public void FailReads(Exception error)
    {
        lock (_gate)
        {
            _readFailure = error;
            Monitor.PulseAll(_gate);
        }
    }

    public void FailWrites(Exception error)
    {
        lock (_gate)
        {
            _writeFailure = error;
        }
    }

    /// <summary>Copies of every packet written so far.</summary>
    public IReadOnlyList<byte[]> Written
    {
        get
        {
            lock (_gate)
            {
                return _written.ToArray();
            }
        }
    }

    /// <summary>The name of the thread that wrote each packet of <see cref="Written"/>.</summary>
    public string?[] WriterThreads
    {
        get
        {
            lock (_gate)
            {
                return _writerThreads.ToArray();
            }
        }
    }

    public int WrittenCount
    {
        get
        {
            lock (_gate)
            {
                return _written.Count;
            }
        }
    }

    public int ReadBatch(Span<PacketBuffer> buffers)
    {
        lock (_gate)
        {
            while (_inbound.Count == 0 && !_woken && _readFailure is null)
            {
                Monitor.Wait(_gate);
            }
            if (_readFailure is not null)
            {
                throw _readFailure;
            }
            if (_woken)
            {
                _woken = false;
                return 0;
            }
            int n = 0;
            while (n < buffers.Length && _inbound.TryDequeue(out var packet))
            {
                var buffer = buffers[n++];
                packet.CopyTo(buffer.Writable);
                buffer.Length = packet.Length;
            }
            return n;
        }
    }

    public void WriteBatch(ReadOnlySpan<PacketBuffer> packets)
    {
        lock (_gate)
        {
            if (_writeFailure is not null)
            {
                throw _writeFailure;
            }
            foreach (var packet in packets)
            {
                _written.Add(packet.Data.ToArray());
                _writerThreads.Add(Thread.CurrentThread.Name);
            }
            Monitor.PulseAll(_gate);
        }
    }

    public void WakeReader()
    {
        lock (_gate)
        {
            _woken = true;
            Monitor.PulseAll(_gate);
        }
    }

    public void Dispose() => Disposed = true;
}
