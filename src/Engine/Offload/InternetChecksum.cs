using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Firezone.Actors.Engine.Offload;

/// <summary>
/// Partial Internet checksums (RFC 1071) for TCP/UDP segmentation and coalescing: sums that can be
/// combined (pseudo-header + header + payload) before the final fold and complement.
/// </summary>
public static class InternetChecksum
{
    /// <summary>
    /// The one's-complement sum of <paramref name="data"/> as big-endian 16-bit words, added to
    /// <paramref name="initial"/>, folded to 16 bits, not complemented. Sums 64-bit native words with
    /// end-around carry and swaps at the end: the sum is byte-order independent and may be computed
    /// in parallel (RFC 1071 section 2, (B) and (C)).
    /// </summary>
    public static ushort Sum(ReadOnlySpan<byte> data, ushort initial = 0)
    {
        ulong acc = 0;
        ref byte start = ref MemoryMarshal.GetReference(data);
        int length = data.Length;
        int i = 0;
        for (; i + 32 <= length; i += 32)
        {
            acc = Add(acc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i)));
            acc = Add(acc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i + 8)));
            acc = Add(acc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i + 16)));
            acc = Add(acc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i + 24)));
        }
        for (; i + 8 <= length; i += 8)
        {
            acc = Add(acc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i)));
        }
        if (i + 4 <= length)
        {
            acc = Add(acc, Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref start, i)));
            i += 4;
        }
        if (i + 2 <= length)
        {
            acc = Add(acc, Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref start, i)));
            i += 2;
        }
        if (i < length)
        {
            // The odd byte is the high byte of a big-endian word padded with zero (RFC 1071 section 4.1).
            acc = Add(acc, BitConverter.IsLittleEndian ? Unsafe.Add(ref start, i) : (ulong)Unsafe.Add(ref start, i) << 8);
        }
        uint folded = (uint)(acc >> 32) + (uint)acc;
        if (folded < (uint)acc)
        {
            folded++;
        }
        folded = (folded >> 16) + (folded & 0xFFFF);
        folded = (folded >> 16) + (folded & 0xFFFF);
        ushort sum = (ushort)folded;
        if (BitConverter.IsLittleEndian)
        {
            sum = BinaryPrimitives.ReverseEndianness(sum);
        }
        return Combine(sum, initial);
    }

    /// <summary>One's-complement addition of two folded partial sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Combine(ushort a, ushort b)
    {
        uint sum = (uint)a + b;
        return (ushort)((sum & 0xFFFF) + (sum >> 16));
    }

    /// <summary>
    /// The pseudo-header sum of TCP/UDP: addresses, protocol and upper-layer length (RFC 793 section
    /// 3.1 for IPv4, RFC 8200 section 8.1 for IPv6), not complemented.
    /// </summary>
    public static ushort PseudoHeaderSum(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, byte protocol, int upperLayerLength)
    {
        ushort sum = Sum(source);
        sum = Sum(destination, sum);
        sum = Combine(sum, protocol);
        sum = Combine(sum, (ushort)upperLayerLength);
        // The IPv6 upper-layer length is 32 bits; segments and super-packets stay below 64 KiB.
        return Combine(sum, (ushort)(upperLayerLength >> 16));
    }

    /// <summary>The value to store in a checksum field: the complement of the final sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Finish(ushort sum) => (ushort)~sum;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Add(ulong acc, ulong value)
    {
        acc += value;
        return acc < value ? acc + 1 : acc;
    }
}
