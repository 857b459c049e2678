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
    /// Blocks until at least one packet is readable or <see cref="WakeReader"/> is called. Reads up
    /// to <c>buffers.Length</c> packets, each into the buffer's data window at
    /// <see cref="PacketBuffer.Headroom"/> (setting <see cref="PacketBuffer.Length"/>), and returns
    /// how many. Returns 0 once woken for stop. Throws <see cref="TunDeviceException"/> when the
    /// device is gone. Call from one dedicated thread only.
    /// </summary>
    int ReadBatch(Span<PacketBuffer> buffers);

    /// <summary>
    /// Writes each packet's <see cref="PacketBuffer.Data"/>. Buffers stay owned by the caller, who
    /// returns them afterwards. A packet the kernel refuses is counted and skipped, not thrown.
    /// Safe to call from several threads (one batch at a time is written), and while another
    /// thread is in ReadBatch.
    /// </summary>
    void WriteBatch(ReadOnlySpan<PacketBuffer> packets);

    /// <summary>Wakes a thread blocked in <see cref="ReadBatch"/> so it can exit promptly (within 100 ms).</summary>
    void WakeReader();
}
