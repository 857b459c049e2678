using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Actors.Io;

/// <summary>
/// The device-specific steps of a <see cref="BatchReaderThread{TSteps}"/>: how to wait for the
/// device, how to read a batch, how to route one buffer, and how to hand the per-read groups on. Implemented by a struct so
/// the reader's generic code is specialised per device and these calls are direct, not virtual
/// (STYLE.md: no per-packet delegate, closure or allocation).
/// </summary>
internal interface IBatchReaderSteps
{
    /// <summary>Blocks until the device has something to read (true), for at most <paramref name="timeoutMs"/> (-1: no limit), or until <see cref="Wake"/> is called (false).</summary>
    bool WaitReadable(int timeoutMs);

    /// <summary>Reads what the device has queued now, without waiting; returns how many buffers were filled.</summary>
    int TryReadBatch(Span<PacketBuffer> buffers);

    /// <summary>
    /// True when the device gives one packet per system call (a TUN device's <c>read</c>), so a read of
    /// a batch ends with a call that finds the queue empty; false when one call reads what is queued
    /// (<c>recvmmsg</c>). A read after idle stops at the first packet on such a device
    /// (<see cref="BatchReaderThread{TSteps}"/>).
    /// </summary>
    bool OnePacketPerCall { get; }

    /// <summary>True when a read left packets in the device object that the next read hands out (a blocked poll does not see them).</summary>
    bool HasPending { get; }

    /// <summary>Makes the device's own reader, blocked in <see cref="WaitReadable"/>, return true once (it then reads what is pending).</summary>
    void Kick();

    /// <summary>
    /// Takes ownership of <paramref name="buffer"/>: adds it to a group or returns it to the pool.
    /// May throw only before it hands the buffer on, so on a throw the buffer is still the caller's.
    /// </summary>
    void Route(PacketBuffer buffer);

    /// <summary>Hands on the groups built since the last flush (once per read): steps them on this thread or tells their actors.</summary>
    void Flush();

    /// <summary>Recycles any group not yet sent (the thread is ending).</summary>
    void Release();

    /// <summary>Unblocks a <see cref="WaitReadable"/> in progress, for good, so the thread sees it is stopping.</summary>
    void Wake();
}
