using Firezone.Actors.Engine.Packets;
using Firezone.Actors.Engine.Tests.Packets;

namespace Firezone.Actors.Engine.Tests.Ecn;

/// <summary>All 16 (inner, outer) pairs of RFC 6040 section 4.2, Figure 4, on IPv4 and on IPv6 packets.</summary>
public class EcnDecapsulationMatrixTests
{
    // inner, outer, expected inner after decapsulation (null = drop), verdict; straight from RFC 6040 Figure 4.
    public static TheoryData<Engine.Ecn, Engine.Ecn, Engine.Ecn?, EcnVerdict> Figure4 => new()
    {
        { Engine.Ecn.NotEct, Engine.Ecn.NotEct, Engine.Ecn.NotEct, EcnVerdict.Forward },
        { Engine.Ecn.NotEct, Engine.Ecn.Ect0, Engine.Ecn.NotEct, EcnVerdict.ForwardUnexpected },
        { Engine.Ecn.NotEct, Engine.Ecn.Ect1, Engine.Ecn.NotEct, EcnVerdict.ForwardUnexpected },
        { Engine.Ecn.NotEct, Engine.Ecn.Ce, null, EcnVerdict.Drop },
        { Engine.Ecn.Ect0, Engine.Ecn.NotEct, Engine.Ecn.Ect0, EcnVerdict.Forward },
        { Engine.Ecn.Ect0, Engine.Ecn.Ect0, Engine.Ecn.Ect0, EcnVerdict.Forward },
        { Engine.Ecn.Ect0, Engine.Ecn.Ect1, Engine.Ecn.Ect1, EcnVerdict.Forward },
        { Engine.Ecn.Ect0, Engine.Ecn.Ce, Engine.Ecn.Ce, EcnVerdict.Forward },
        { Engine.Ecn.Ect1, Engine.Ecn.NotEct, Engine.Ecn.Ect1, EcnVerdict.Forward },
        { Engine.Ecn.Ect1, Engine.Ecn.Ect0, Engine.Ecn.Ect1, EcnVerdict.ForwardNotable },
        { Engine.Ecn.Ect1, Engine.Ecn.Ect1, Engine.Ecn.Ect1, EcnVerdict.Forward },
        { Engine.Ecn.Ect1, Engine.Ecn.Ce, Engine.Ecn.Ce, EcnVerdict.Forward },
        { Engine.Ecn.Ce, Engine.Ecn.NotEct, Engine.Ecn.Ce, EcnVerdict.Forward },
        { Engine.Ecn.Ce, Engine.Ecn.Ect0, Engine.Ecn.Ce, EcnVerdict.Forward },
        { Engine.Ecn.Ce, Engine.Ecn.Ect1, Engine.Ecn.Ce, EcnVerdict.ForwardUnexpected },
        { Engine.Ecn.Ce, Engine.Ecn.Ce, Engine.Ecn.Ce, EcnVerdict.Forward },
    };

    [Theory]
    [MemberData(nameof(Figure4))]
    public void Table_matches_rfc6040_figure4(Engine.Ecn inner, Engine.Ecn outer, Engine.Ecn? expected, EcnVerdict verdict)
    {
        var result = EcnDecapsulation.Decapsulate(inner, outer);
        Assert.Equal(verdict, result.Verdict);
        if (expected is { } e)
        {
            Assert.Equal(e, result.Inner);
        }
        Assert.Equal(verdict == EcnVerdict.Drop, result.IsDrop);
    }

    [Theory]
    [MemberData(nameof(Figure4))]
    public void Ipv4_packet_rewritten_per_table_with_valid_checksum(Engine.Ecn inner, Engine.Ecn outer, Engine.Ecn? expected, EcnVerdict verdict)
    {
        // DSCP 0x2E (EF) in the upper six bits must survive the rewrite.
        var bytes = PacketFactory.Ipv4(tos: (byte)(0xB8 | (byte)inner));
        var before = (byte[])bytes.Clone();

        var result = IpPacket.ApplyDecapsulation(bytes, outer, out var status);

        Assert.Equal(IpParseStatus.Ok, status);
        Assert.Equal(verdict, result.Verdict);
        Assert.Equal(IpParseStatus.Ok, Ipv4Packet.TryParse(bytes, out var packet));
        if (expected is { } e)
        {
            Assert.Equal(e, packet.Ecn);
            Assert.Equal(0xB8, bytes[1] & 0xFC);
        }
        else
        {
            Assert.Equal(before, bytes); // a dropped packet is left untouched
        }
        // The incremental update (RFC 1624) must agree with a full recomputation (RFC 1071).
        Assert.True(packet.IsHeaderChecksumValid);
        var recomputed = (byte[])bytes.Clone();
        recomputed[10] = recomputed[11] = 0;
        var full = Ipv4Checksum.Compute(recomputed.AsSpan(0, 20));
        Assert.Equal(full, packet.HeaderChecksum);
        Assert.Equal(before.AsSpan(2).ToArray()[..8], bytes.AsSpan(2).ToArray()[..8]);
        Assert.Equal(before.AsSpan(12).ToArray(), bytes.AsSpan(12).ToArray());
    }

    [Theory]
    [MemberData(nameof(Figure4))]
    public void Ipv4_packet_with_options_rewritten_per_table_with_valid_checksum(Engine.Ecn inner, Engine.Ecn outer, Engine.Ecn? expected, EcnVerdict verdict)
    {
        // TOS sits in the first header word whatever the IHL, so the RFC 1624 update is unchanged; the
        // full check must run over all IHL*4 bytes (RFC 791 section 3.1).
        var bytes = PacketFactory.Ipv4(tos: (byte)(0xB8 | (byte)inner), protocol: 2, optionWords: 3);
        var before = (byte[])bytes.Clone();

        var result = IpPacket.ApplyDecapsulation(bytes, outer, out var status);

        Assert.Equal(IpParseStatus.Ok, status);
        Assert.Equal(verdict, result.Verdict);
        Assert.Equal(IpParseStatus.Ok, Ipv4Packet.TryParse(bytes, out var packet));
        Assert.Equal(32, packet.HeaderLengthBytes);
        if (expected is { } e)
        {
            Assert.Equal(e, packet.Ecn);
            Assert.Equal(0xB8, bytes[1] & 0xFC);
        }
        else
        {
            Assert.Equal(before, bytes);
        }
        Assert.True(packet.IsHeaderChecksumValid);
        var recomputed = (byte[])bytes.Clone();
        recomputed[10] = recomputed[11] = 0;
        Assert.Equal(Ipv4Checksum.Compute(recomputed.AsSpan(0, 32)), packet.HeaderChecksum);
        Assert.Equal(before.AsSpan(12).ToArray(), bytes.AsSpan(12).ToArray());
    }

    [Theory]
    [MemberData(nameof(Figure4))]
    public void Ipv6_packet_rewritten_per_table_keeping_dscp_and_flow_label(Engine.Ecn inner, Engine.Ecn outer, Engine.Ecn? expected, EcnVerdict verdict)
    {
        var bytes = PacketFactory.Ipv6(trafficClass: (byte)(0xB8 | (byte)inner), flowLabel: 0xABCDE);
        var before = (byte[])bytes.Clone();

        var result = IpPacket.ApplyDecapsulation(bytes, outer, out var status);

        Assert.Equal(IpParseStatus.Ok, status);
        Assert.Equal(verdict, result.Verdict);
        Assert.Equal(IpParseStatus.Ok, Ipv6Packet.TryParse(bytes, out var packet));
        if (expected is { } e)
        {
            Assert.Equal(e, packet.Ecn);
            Assert.Equal(0xB8 | (byte)e, packet.TrafficClass);
        }
        else
        {
            Assert.Equal(before, bytes);
        }
        Assert.Equal(0x6, bytes[0] >> 4);
        Assert.Equal(0xABCDE, (bytes[1] & 0x0F) << 16 | bytes[2] << 8 | bytes[3]);
        Assert.Equal(before.AsSpan(4).ToArray(), bytes.AsSpan(4).ToArray());
    }

    [Fact]
    public void Ect_is_never_cleared()
    {
        foreach (var inner in new[] { Engine.Ecn.Ect0, Engine.Ecn.Ect1, Engine.Ecn.Ce })
        {
            foreach (var outer in Enum.GetValues<Engine.Ecn>())
            {
                var result = EcnDecapsulation.Decapsulate(inner, outer);
                Assert.NotEqual(Engine.Ecn.NotEct, result.Inner);
                Assert.False(result.IsDrop);
            }
        }
    }
}
