using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Tests.Fakes;

/// <summary>
/// An in-memory TUN device (the role of wireguard-go's tuntest): <see cref="Inject"/> plays the
/// kernel sending packets into the tunnel; <see cref="Written"/> collects what the tunnel wrote.
/// WaitReadable blocks on a monitor until packets, a wake (for good) or an injected failure arrive.
/// </summary>
public sealed class FakeTun(string name = "faketun0") : ITunDevice
{
    private readonly object _gate = new();
    private readonly Queue<byte[]> _inbound = new();
    private readonly Queue<byte[]> _quiet = new(); // AnswerQuietly's answers: read, but never waited for
    private bool _quietLeft; // a read left some of them: pending in the device object
    private readonly List<byte[]> _written = [];
    private readonly List<string?> _writerThreads = [];
    private readonly List<int> _reads = []; // packets returned by each read that returned any
    private bool _woken;
    private Exception? _readFailure;
    private Exception? _writeFailure;

    public string Name { get; } = name;

    public int Mtu => 1420;

    /// <summary>As a real device would count reads it dropped (set by a test).</summary>
    public long ReadDropped { get; set; }

    public bool Disposed { get; private set; }

    /// <summary>
    /// When set, answers each written packet the way a kernel answers a ping: the answer is queued
    /// for reading at once, but a thread blocked in <see cref="WaitReadable"/> is not woken, so only
    /// a thread that polls the device (reply polling) finds it: <see cref="WaitReadable"/> does not
    /// see it at all, only <see cref="TryReadBatch"/> does.
    /// </summary>
    public Func<byte[], byte[][]?>? AnswerQuietly { get; set; }

    /// <summary>
    /// At most this many quiet answers per read; the rest are then pending in the device object
    /// (<see cref="HasPendingPackets"/>, and <see cref="WaitReadable"/> says true), as the segments
    /// of a super-packet that did not fit a read are.
    /// </summary>
    public int QuietAnswersPerRead { get; set; } = int.MaxValue;

    /// <summary>Queues packets to be read, all visible to the same read.</summary>
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

    /// <summary>The next read (or wait) throws <paramref name="error"/> (the device went away).</summary>
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

    /// <summary>Injected packets not read yet.</summary>
    public int Unread
    {
        get
        {
            lock (_gate)
            {
                return _inbound.Count;
            }
        }
    }

    /// <summary>How many packets each read that returned any returned, in order.</summary>
    public int[] ReadSizes
    {
        get
        {
            lock (_gate)
            {
                return _reads.ToArray();
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

    public bool HasPendingPackets
    {
        get
        {
            lock (_gate)
            {
                return _quietLeft;
            }
        }
    }

    private int _waiting;

    /// <summary>A reader is blocked in <see cref="WaitReadable"/> now, with nothing to read: a test waits for this instead of sleeping.</summary>
    public bool ReaderWaiting
    {
        get
        {
            lock (_gate)
            {
                return _waiting > 0;
            }
        }
    }

    public bool WaitReadable(int timeoutMs)
    {
        lock (_gate)
        {
            bool waited;
            _waiting++; // seen by others only while the wait below has released the lock
            try
            {
                waited = MonitorWait.While(_gate, () => _inbound.Count == 0 && !_quietLeft && !_woken && _readFailure is null, timeoutMs);
            }
            finally
            {
                _waiting--;
            }
            if (!waited)
            {
                return false;
            }
            if (_readFailure is not null)
            {
                throw _readFailure;
            }
            return !_woken;
        }
    }

    /// <summary>
    /// How long each read takes at most before it looks at the queue: a reader thread busy in a read
    /// when it is told to stop. <see cref="EndStalls"/> ends it sooner.
    /// </summary>
    public TimeSpan ReadStall { get; set; }

    private int _stalledReads;
    private readonly ManualResetEventSlim _stallsEnded = new();

    /// <summary>How many reads have entered their <see cref="ReadStall"/>: a test waits for this instead of sleeping.</summary>
    public int StalledReads => Volatile.Read(ref _stalledReads);

    /// <summary>Ends every stall now and from now on, so a test decides when a stalled reader moves on, not the clock.</summary>
    public void EndStalls() => _stallsEnded.Set();

    public int TryReadBatch(Span<PacketBuffer> buffers)
    {
        if (ReadStall > TimeSpan.Zero)
        {
            Interlocked.Increment(ref _stalledReads);
            _stallsEnded.Wait(ReadStall);
        }
        lock (_gate)
        {
            if (_readFailure is not null)
            {
                throw _readFailure;
            }
            int n = 0;
            while (n < buffers.Length && n < QuietAnswersPerRead && _quiet.TryDequeue(out var packet))
            {
                Fill(buffers[n++], packet);
            }
            _quietLeft = _quiet.Count > 0;
            while (n < buffers.Length && _inbound.TryDequeue(out var packet))
            {
                Fill(buffers[n++], packet);
            }
            if (n > 0)
            {
                _reads.Add(n);
            }
            return n;
        }
    }

    private static void Fill(PacketBuffer buffer, byte[] packet)
    {
        packet.CopyTo(buffer.Writable);
        buffer.Length = packet.Length;
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
                foreach (var answer in AnswerQuietly?.Invoke(packet.Data.ToArray()) ?? [])
                {
                    _quiet.Enqueue(answer);
                }
            }
            // No PulseAll: only readers wait on _gate, and a write gives them nothing to read.
        }
    }

    public void KickReader()
    {
        lock (_gate)
        {
            Monitor.PulseAll(_gate); // WaitReadable then sees the pending quiet answers
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

    /// <summary>As the host's RearmAfterStop: a stopped tunnel's wake is cleared for the tunnel rebuilt on this device.</summary>
    public void RearmAfterStop()
    {
        lock (_gate)
        {
            _woken = false;
        }
    }

    public void Dispose() => Disposed = true;
}
