using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native;

/// <summary>
/// A TUN device seen as batches of IP packets (the shape of wireguard-go's tun.Device).
/// Implemented by <c>LinuxTunDevice</c> and by in-memory fakes in tests.
/// </summary>
public interface ITunDevice : IDisposable
{
    /// <summary>The interface name (given, or chosen by the kernel).</summary>
    string Name { get; }

    int Mtu { get; }

    /// <summary>
    /// Blocks until a packet is queued, for at most <paramref name="timeoutMs"/> (-1: no limit, 0:
    /// just look), or until <see cref="WakeReader"/> is called. True when a read would find
    /// something (or a reader took it first), at once while packets are pending; false on timeout and
    /// once woken for stop. Throws
    /// <see cref="TunDeviceException"/> when the device is gone. Any thread.
    /// </summary>
    bool WaitReadable(int timeoutMs);

    /// <summary>
    /// Reads the packets queued now without waiting, up to <c>buffers.Length</c>, each into the
    /// buffer's data window at <see cref="PacketBuffer.Headroom"/> (setting
    /// <see cref="PacketBuffer.Length"/>), and returns how many (0: none). Throws
    /// <see cref="TunDeviceException"/> when the device is gone. One read at a time: threads that
    /// share the device serialise their reads (so the packets of a flow keep their order).
    /// </summary>
    int TryReadBatch(Span<PacketBuffer> buffers);

    /// <summary>
    /// True when an earlier read left packets in this object (segments of a super-packet that did
    /// not fit its span), which the next read hands out. A thread blocked in poll does not see them,
    /// so a reader that leaves some must read again or <see cref="KickReader"/> the one that waits.
    /// </summary>
    bool HasPendingPackets { get; }

    /// <summary>
    /// Makes a thread blocked in <see cref="WaitReadable"/> return true once, for a read on another
    /// thread that left <see cref="HasPendingPackets"/>. Unlike <see cref="WakeReader"/> it does not stop it.
    /// </summary>
    void KickReader();

    /// <summary>
    /// Writes each packet's <see cref="PacketBuffer.Data"/>. Buffers stay owned by the caller, who
    /// returns them afterwards. A packet the kernel refuses is counted and skipped, not thrown.
    /// Safe to call from several threads (one batch at a time is written), and while another
    /// thread reads.
    /// </summary>
    void WriteBatch(ReadOnlySpan<PacketBuffer> packets);

    /// <summary>
    /// Wakes a thread blocked in <see cref="WaitReadable"/>, for good: every later wait returns false
    /// at once, except while packets are pending (<see cref="HasPendingPackets"/>).
    /// </summary>
    void WakeReader();

    /// <summary>Packets the device read and dropped (malformed offload headers, longer than the buffers); 0 when not counted.</summary>
    long ReadDropped => 0;
}
