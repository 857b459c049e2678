using System.Diagnostics;

namespace Firezone.Actors.Engine.Buffers;

/// <summary>
/// A pool of fixed-size pinned buffers (pinned so native reads and writes need no per-call pinning),
/// in the manner of Kestrel's PinnedBlockMemoryPool. Rent and return never allocate once the pool is
/// warm: free buffers sit on an array-backed stack behind a short lock. <see cref="Outstanding"/>
/// counts leases so tests can assert every buffer came back. A double return is always detected
/// (one interlocked exchange) and throws, since it means two owners.
/// </summary>
public sealed class PacketBufferPool
{
    /// <summary>Room for a 1500-byte MTU packet plus headroom and tailroom, rounded to 2 KiB.</summary>
    public const int DefaultBufferSize = 2048;

    private readonly object _gate = new();
    private PacketBuffer[] _free;
    private int _freeCount;
    private int _created;
    private int _outstanding;

    /// <param name="bufferSize">Bytes per buffer, including <see cref="PacketBuffer.Headroom"/> and <see cref="PacketBuffer.Tailroom"/>.</param>
    /// <param name="preallocate">Buffers created up front.</param>
    /// <param name="maxBuffers">Upper bound on buffers ever created; renting beyond it fails (back-pressure instead of unbounded memory).</param>
    public PacketBufferPool(int bufferSize = DefaultBufferSize, int preallocate = 256, int maxBuffers = 16384)
    {
        if (bufferSize < PacketBuffer.Headroom + PacketBuffer.Tailroom + 64)
        {
            throw new ArgumentOutOfRangeException(nameof(bufferSize), $"buffer size {bufferSize} leaves no room for a packet");
        }
        if (preallocate > maxBuffers)
        {
            throw new ArgumentOutOfRangeException(nameof(preallocate), $"preallocate {preallocate} exceeds maxBuffers {maxBuffers}");
        }
        BufferSize = bufferSize;
        MaxBuffers = maxBuffers;
        _free = new PacketBuffer[Math.Max(preallocate, 16)];
        for (int i = 0; i < preallocate; i++)
        {
            _free[_freeCount++] = Create();
        }
    }

    public int BufferSize { get; }
    public int MaxBuffers { get; }

    /// <summary>Buffers currently rented and not yet returned.</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>Buffers created so far (free plus outstanding).</summary>
    public int Created => Volatile.Read(ref _created);

    /// <summary>Rents a reset buffer. Throws when <see cref="MaxBuffers"/> are all out (a leak or missing back-pressure).</summary>
    public PacketBuffer Rent()
    {
        if (!TryRent(out var buffer))
        {
            throw new InvalidOperationException($"packet buffer pool exhausted: all {MaxBuffers} buffers are leased");
        }
        return buffer;
    }

    /// <summary>Rents a reset buffer, or returns false when all <see cref="MaxBuffers"/> are leased.</summary>
    public bool TryRent(out PacketBuffer buffer)
    {
        PacketBuffer? taken = null;
        lock (_gate)
        {
            if (_freeCount > 0)
            {
                taken = _free[--_freeCount];
                _free[_freeCount] = null!;
            }
            else if (_created >= MaxBuffers)
            {
                buffer = null!;
                return false;
            }
            else
            {
                _created++;
            }
        }
        taken ??= new PacketBuffer(this, GC.AllocateArray<byte>(BufferSize, pinned: true));
        int previous = Interlocked.Exchange(ref taken.LeaseState, 1);
        Debug.Assert(previous == 0, "a buffer in the free list was marked as rented");
        Interlocked.Increment(ref _outstanding);
        taken.Reset();
        buffer = taken;
        return true;
    }

    /// <summary>Returns a rented buffer. A second return of the same lease throws.</summary>
    public void Return(PacketBuffer buffer)
    {
        if (!ReferenceEquals(buffer.Pool, this))
        {
            throw new InvalidOperationException("packet buffer returned to a pool it does not belong to");
        }
        if (Interlocked.Exchange(ref buffer.LeaseState, 0) != 1)
        {
            throw new InvalidOperationException("packet buffer returned twice (two owners of one buffer)");
        }
        if (buffer.StashOwner is not null)
        {
            // No secret waits in the pool for the next renter (a dropped initiation's chain key).
            WireGuard.InitiationStash.Clear(buffer);
        }
        Interlocked.Decrement(ref _outstanding);
        lock (_gate)
        {
            if (_freeCount == _free.Length)
            {
                Array.Resize(ref _free, _free.Length * 2); // grows only while the pool warms up
            }
            _free[_freeCount++] = buffer;
        }
    }

    private PacketBuffer Create()
    {
        _created++;
        return new PacketBuffer(this, GC.AllocateArray<byte>(BufferSize, pinned: true));
    }
}
