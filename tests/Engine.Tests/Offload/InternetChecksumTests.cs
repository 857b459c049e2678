using FsCheck.Xunit;
using Firezone.Actors.Engine.Offload;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Engine.Tests.Offload;

using Ecn = Firezone.Actors.Engine.Ecn;

public class InternetChecksumTests
{
    [Property(MaxTest = 1000)]
    public bool Wide_sum_equals_the_plain_rfc1071_checksum(byte[] data, byte skip)
    {
        // Any start offset (alignment) and any length, odd ones included.
        int start = data.Length == 0 ? 0 : skip % data.Length;
        var span = data.AsSpan(start);
        return InternetChecksum.Finish(InternetChecksum.Sum(span)) == Ipv4Checksum.Compute(span);
    }

    [Property(MaxTest = 500)]
    public bool Sums_of_even_length_parts_combine(byte[] a, byte[] b)
    {
        var evenA = a.AsSpan(0, a.Length & ~1);
        var whole = new byte[evenA.Length + b.Length];
        evenA.CopyTo(whole);
        b.CopyTo(whole, evenA.Length);
        return InternetChecksum.Sum(b, InternetChecksum.Sum(evenA)) == InternetChecksum.Sum(whole)
            || (InternetChecksum.Sum(whole) == 0 && InternetChecksum.Sum(b, InternetChecksum.Sum(evenA)) == 0xFFFF);
    }

    [Fact]
    public void Rfc1071_example_sums_to_ddf2()
    {
        // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (before complement).
        Assert.Equal(0xddf2, InternetChecksum.Sum([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]));
    }

    [Property(MaxTest = 2000)]
    public bool Wide_sum_equals_rfc1071_for_lengths_up_to_9000_at_any_alignment(int seed, ushort lengthDraw, byte offsetDraw, ushort initial)
    {
        // Lengths 0..9000 (jumbo frames) cross every vector/scalar boundary and tail combination;
        // offsets 0..63 move the start across every alignment of a 64-byte vector step.
        int length = lengthDraw % 9001;
        int offset = offsetDraw % 64;
        var buffer = new byte[offset + length];
        new Random(seed).NextBytes(buffer);
        var span = buffer.AsSpan(offset, length);
        return InternetChecksum.Sum(span, initial) == Rfc1071Sum(span, initial);
    }

    [Fact]
    public void Wide_sum_equals_rfc1071_for_every_length_and_alignment_of_all_ones()
    {
        // All-0xFF data maximises every accumulator and every end-around carry.
        var buffer = new byte[64 + 9000];
        buffer.AsSpan().Fill(0xFF);
        for (int offset = 0; offset < 8; offset++)
        {
            for (int length = 0; length <= 9000 - offset; length++)
            {
                var span = buffer.AsSpan(offset, length);
                Assert.Equal(Rfc1071Sum(span, 0), InternetChecksum.Sum(span));
            }
        }
    }

    [Fact]
    public void Wide_sum_equals_rfc1071_for_a_64_kib_super_packet()
    {
        var buffer = new byte[65536 + 3];
        new Random(7).NextBytes(buffer);
        for (int offset = 0; offset < 3; offset++)
        {
            var span = buffer.AsSpan(offset, 65536);
            Assert.Equal(Rfc1071Sum(span, 0x1234), InternetChecksum.Sum(span, 0x1234));
        }
    }

    /// <summary>
    /// The plain RFC 1071 section 4.1 loop: big-endian 16-bit words, one at a time, the odd byte padded
    /// with zero, carries folded, not complemented; then one's-complement added to the initial sum.
    /// </summary>
    private static ushort Rfc1071Sum(ReadOnlySpan<byte> data, ushort initial)
    {
        uint sum = 0;
        int i = 0;
        for (; i + 1 < data.Length; i += 2)
        {
            sum += (uint)(data[i] << 8 | data[i + 1]);
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        if (i < data.Length)
        {
            sum += (uint)(data[i] << 8);
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        sum += initial;
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }
}
