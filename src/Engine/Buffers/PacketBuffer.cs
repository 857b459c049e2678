namespace Firezone.Actors.Engine.Buffers;

/// <summary>
/// One fixed-size, pinned packet buffer from a <see cref="PacketBufferPool"/>. The data lives at
/// [<see cref="Offset"/>, <see cref="Offset"/> + <see cref="Length"/>). A fresh buffer starts at
/// <see cref="Headroom"/>, so a TUN read lands where the WireGuard transport header (16 bytes) can be
/// written in front of it and the datagram sealed in place; the tail leaves room for padding to 16
/// bytes and the 16-byte AEAD tag (WireGuard whitepaper section 5.4.6).
///
/// Ownership is a move: exactly one stage holds a buffer at a time, and whoever finishes with it
/// (or drops the packet) calls <see cref="Return"/>.
/// </summary>
public sealed class PacketBuffer
{
    /// <summary>Bytes reserved in front of the packet: the 16-byte transport header, rounded up for
    /// alignment and future use (a 10 or 12 byte virtio_net_hdr for TUN offloads fits in front of it).</summary>
    public const int Headroom = 32;

    /// <summary>Bytes reserved after the largest packet: up to 15 bytes of padding plus the 16-byte tag.</summary>
    public const int Tailroom = 32;

    internal readonly byte[] Array;
    internal int LeaseState; // 0 = in pool, 1 = rented; guarded with Interlocked for double-return detection

    /// <summary>Bytes at the end of the array that may hold a secret a later stage takes (see WireGuard/InitiationStash.cs).</summary>
    internal const int SecretTailSize = 176;

    // Who left a secret in the last SecretTailSize bytes of the array (the Device that decrypted an
    // initiation, for the peer the buffer moves to), or null. Forgotten, and the bytes zeroed, when
    // it is taken, when the buffer is reset and when it goes back to its pool.
    internal object? StashOwner;

    internal PacketBuffer(PacketBufferPool pool, byte[] array)
    {
        Pool = pool;
        Array = array;
    }

    public PacketBufferPool Pool { get; }

    /// <summary>Total bytes in the underlying array.</summary>
    public int Capacity => Array.Length;

    /// <summary>Start of the data within the array.</summary>
    public int Offset { get; set; }

    /// <summary>Number of data bytes.</summary>
    public int Length { get; set; }

    /// <summary>For datagrams: the ECN codepoint received with it, or to send it with.
    /// For packets from the TUN: free for the stage to use.</summary>
    public Ecn Ecn { get; set; }

    /// <summary>For datagrams: the source it came from, or the destination to send it to.</summary>
    public UdpEndpoint Endpoint { get; set; }

    /// <summary>
    /// For datagrams: the local address it arrived at (port 0), or the one to send it from, so a
    /// reply leaves from the address the peer contacted (IP_PKTINFO / IPV6_PKTINFO, as wireguard-go's
    /// and the kernel's WireGuard do). None: the socket did not say, or the kernel picks.
    /// </summary>
    public UdpEndpoint LocalAddress { get; set; }

    /// <summary>The data bytes.</summary>
    public Span<byte> Data => Array.AsSpan(Offset, Length);

    /// <summary>The whole underlying array, for stages that write headers in front of the data.</summary>
    public Span<byte> Memory => Array;

    /// <summary>Room from <see cref="Offset"/> to the end of the array (where a read may write).</summary>
    public Span<byte> Writable => Array.AsSpan(Offset);

    /// <summary>The largest packet a read at <see cref="Headroom"/> may deliver, keeping the tail free.</summary>
    public int MaxPacketLength => Array.Length - Headroom - Tailroom;

    /// <summary>Sets the data window; the caller guarantees it lies within the array.</summary>
    public void SetData(int offset, int length)
    {
        if ((uint)offset > (uint)Array.Length || (uint)length > (uint)(Array.Length - offset))
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"data window [{offset}, {offset + length}) outside buffer of {Array.Length} bytes");
        }
        Offset = offset;
        Length = length;
    }

    /// <summary>Back to the state of a freshly rented buffer.</summary>
    public void Reset()
    {
        Offset = Headroom;
        Length = 0;
        Ecn = Ecn.NotEct;
        Endpoint = default;
        LocalAddress = default;
        if (StashOwner is not null)
        {
            ForgetSecretTail();
        }
    }

    /// <summary>Zeroes the secret tail and forgets its owner.</summary>
    internal void ForgetSecretTail()
    {
        StashOwner = null;
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(Array.AsSpan(Math.Max(0, Array.Length - SecretTailSize)));
    }

    /// <summary>Gives the buffer back to its pool. The caller must not touch it afterwards.</summary>
    public void Return() => Pool.Return(this);
}
