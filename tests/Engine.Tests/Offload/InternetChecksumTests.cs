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
}
