using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// How big the tunnel's packet buffers are for a TUN MTU. A TUN read delivers up to MTU bytes at
/// <see cref="PacketBuffer.Headroom"/> (room for the 16-byte transport header) and sealing adds up
/// to 15 bytes of padding (whitepaper section 5.4.6) plus the 16-byte AEAD tag in the tailroom. The
/// socket receives the whole outer datagram (16-byte header + MTU + padding + 16-byte tag) at
/// Headroom into the same buffers, and that is the larger need. A packet longer than its
/// buffer would be truncated by read(2)/recvmmsg(2) and then dropped as malformed, so the buffers
/// always cover the MTU: the default 2 KiB for ordinary MTUs, larger (64-byte multiples) for jumbo
/// MTUs. The pool's buffer count shrinks as buffers grow so its memory stays bounded.
/// </summary>
public static class PacketBufferSizing
{
    /// <summary>Upper bound on the memory a pool may grow to, in bytes.</summary>
    public const long MaxPoolBytes = 64L * 1024 * 1024;

    /// <summary>Fewest buffers a pool may hold: a few full read and receive batches in flight.</summary>
    public const int MinBuffers = 1024;

    /// <summary>The pool's default count (<see cref="PacketBufferPool"/>'s own default).</summary>
    public const int DefaultMaxBuffers = 16384;

    public const int Preallocate = 256;

    /// <summary>WireGuard's framing of a transport message: 16-byte header and 16-byte tag (section 5.4.6).</summary>
    public const int TransportOverhead = MessageHeader.TransportMinSize;

    /// <summary>Padding to a multiple of 16 (at most 15 bytes; section 5.4.6), counted whole for a peer that pads beyond our MTU.</summary>
    public const int MaxPadding = ProtocolConstants.PaddingMultiple;

    /// <summary>
    /// Bytes per buffer for <paramref name="mtu"/>: a received datagram of MTU + framing + padding
    /// after the headroom with the tailroom kept free, rounded up to 64, at least 2048.
    /// </summary>
    public static int BufferSizeFor(int mtu)
    {
        int needed = PacketBuffer.Headroom + TransportOverhead + mtu + MaxPadding + PacketBuffer.Tailroom;
        int rounded = (needed + 63) & ~63;
        return Math.Max(PacketBufferPool.DefaultBufferSize, rounded);
    }

    /// <summary>The largest MTU whose packets fit buffers of <paramref name="bufferSize"/> bytes.</summary>
    public static int MaxMtuFor(int bufferSize) => bufferSize - PacketBuffer.Headroom - PacketBuffer.Tailroom - TransportOverhead - MaxPadding;

    public static int MaxBuffersFor(int bufferSize) =>
        (int)Math.Clamp(MaxPoolBytes / bufferSize, MinBuffers, DefaultMaxBuffers);

    public static PacketBufferPool PoolFor(int mtu)
    {
        int size = BufferSizeFor(mtu);
        int max = MaxBuffersFor(size);
        return new PacketBufferPool(size, Math.Min(Preallocate, max), max);
    }
}
