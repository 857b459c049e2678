using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Firezone.Actors.Engine.Offload;

/// <summary>
/// Partial Internet checksums (RFC 1071) for TCP/UDP segmentation and coalescing: sums that can be
/// combined (pseudo-header + header + payload) before the final fold and complement.
/// </summary>
public static class InternetChecksum
{
    /// <summary>
    /// The one's-complement sum of <paramref name="data"/> as big-endian 16-bit words, added to
    /// <paramref name="initial"/>, folded to 16 bits, not complemented.
    /// </summary>
    /// <remarks>
    /// Why it is fast and still exact: the one's-complement sum is byte-order independent (RFC 1071
    /// section 2(B)), so the data is summed as native-endian words and the folded result is swapped
    /// once at the end; and it is associative (section 2(A)) and may be deferred (section 2(C)), so
    /// 32-bit words are added zero-extended into 64-bit accumulators, which cannot carry out for any
    /// span length (at most 2^29 words of at most 2^32 - 1 each), and the carries are folded back only
    /// at the end. Four independent accumulators of the widest accelerated vector (256 or 128
    /// bits, else scalar) break the add dependency chain.
    /// </remarks>
    public static ushort Sum(ReadOnlySpan<byte> data, ushort initial = 0)
    {
        ref byte start = ref MemoryMarshal.GetReference(data);
        int length = data.Length;
        int i = 0;
        ulong acc = 0;
        if (Vector256.IsHardwareAccelerated && length >= 64)
        {
            Vector256<ulong> low = Vector256.Create(0xFFFF_FFFFUL);
            Vector256<ulong> a0 = Vector256<ulong>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (; i + 64 <= length; i += 64)
            {
                Vector256<ulong> v0 = Vector256.LoadUnsafe(ref Unsafe.Add(ref start, i)).AsUInt64();
                Vector256<ulong> v1 = Vector256.LoadUnsafe(ref Unsafe.Add(ref start, i + 32)).AsUInt64();
                a0 += v0 & low;
                a1 += v0 >>> 32;
                a2 += v1 & low;
                a3 += v1 >>> 32;
            }
            if (i + 32 <= length)
            {
                Vector256<ulong> v0 = Vector256.LoadUnsafe(ref Unsafe.Add(ref start, i)).AsUInt64();
                a0 += v0 & low;
                a1 += v0 >>> 32;
                i += 32;
            }
            acc = Vector256.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector128.IsHardwareAccelerated && length >= 32)
        {
            Vector128<ulong> low = Vector128.Create(0xFFFF_FFFFUL);
            Vector128<ulong> a0 = Vector128<ulong>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (; i + 32 <= length; i += 32)
            {
                Vector128<ulong> v0 = Vector128.LoadUnsafe(ref Unsafe.Add(ref start, i)).AsUInt64();
                Vector128<ulong> v1 = Vector128.LoadUnsafe(ref Unsafe.Add(ref start, i + 16)).AsUInt64();
                a0 += v0 & low;
                a1 += v0 >>> 32;
                a2 += v1 & low;
                a3 += v1 >>> 32;
            }
            acc = Vector128.Sum((a0 + a1) + (a2 + a3));
        }
        // The rest (and everything without SIMD): two independent carry-free accumulators.
        ulong b0 = 0, b1 = 0;
        for (; i + 8 <= length; i += 8)
        {
            ulong word = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i));
            b0 += word & 0xFFFF_FFFF;
            b1 += word >> 32;
        }
        if (i + 4 <= length)
        {
            b0 += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref start, i));
            i += 4;
        }
        if (i + 2 <= length)
        {
            b1 += Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref start, i));
            i += 2;
        }
        if (i < length)
        {
            // The odd byte is the high byte of a big-endian word padded with zero (RFC 1071 section 4.1).
            b0 += BitConverter.IsLittleEndian ? Unsafe.Add(ref start, i) : (ulong)Unsafe.Add(ref start, i) << 8;
        }
        // All three stay below 2^62 (see remarks), so these two additions cannot carry out.
        acc += b0 + b1;
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
}
