using System.Net;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Engine.Tests.Packets;

public class IpPacketParsingTests
{
    [Fact]
    public void Ipv4_fields_are_read()
    {
        var bytes = PacketFactory.Ipv4(tos: 0x02, payloadLength: 12, protocol: 6, source: 0x0A000001, destination: 0xC0A80102);
        Assert.Equal(IpParseStatus.Ok, Ipv4Packet.TryParse(bytes, out var packet));
        Assert.Equal(4, packet.Version);
        Assert.Equal(32, packet.TotalLength);
        Assert.Equal(6, packet.Protocol);
        Assert.Equal(IPAddress.Parse("10.0.0.1"), packet.SourceAddress);
        Assert.Equal(IPAddress.Parse("192.168.1.2"), packet.DestinationAddress);
        Assert.Equal(Engine.Ecn.Ect0, packet.Ecn);
        Assert.True(packet.IsHeaderChecksumValid);
    }

    [Fact]
    public void Ipv6_fields_are_read()
    {
        var bytes = PacketFactory.Ipv6(trafficClass: 0x03, payloadLength: 10, nextHeader: 58);
        Assert.Equal(IpParseStatus.Ok, Ipv6Packet.TryParse(bytes, out var packet));
        Assert.Equal(6, packet.Version);
        Assert.Equal(50, packet.TotalLength);
        Assert.Equal(58, packet.NextHeader);
        Assert.Equal(Engine.Ecn.Ce, packet.Ecn);
        Assert.Equal(16, packet.SourceBytes.Length);
    }

    [Fact]
    public void Trailing_bytes_beyond_total_length_are_excluded()
    {
        var bytes = PacketFactory.Ipv4(payloadLength: 8, trailing: 6);
        Assert.Equal(IpParseStatus.Ok, Ipv4Packet.TryParse(bytes, out var packet));
        Assert.Equal(28, packet.TotalLength);
        Assert.Equal(IpParseStatus.Ok, IpPacket.Validate(bytes, out var total));
        Assert.Equal(28, total);
    }

    [Fact]
    public void Malformed_input_is_reported_not_thrown()
    {
        Assert.Equal(IpParseStatus.Truncated, IpPacket.Validate([], out _));
        Assert.Equal(IpParseStatus.Truncated, Ipv4Packet.TryParse(new byte[19], out _));
        Assert.Equal(IpParseStatus.Truncated, Ipv6Packet.TryParse(new byte[39], out _));
        Assert.Equal(IpParseStatus.WrongVersion, IpPacket.Validate([0x55, 0, 0, 0], out _));
        Assert.Equal(IpParseStatus.WrongVersion, Ipv4Packet.TryParse(PacketFactory.Ipv6(), out _));
        Assert.Equal(IpParseStatus.WrongVersion, Ipv6Packet.TryParse(PacketFactory.Ipv4(payloadLength: 30), out _));

        var shortIhl = PacketFactory.Ipv4();
        shortIhl[0] = 0x44;
        Assert.Equal(IpParseStatus.BadHeaderLength, Ipv4Packet.TryParse(shortIhl, out _));

        // IHL 15 claims a 60-byte header: with the buffer long enough (link padding) but total length 28,
        // the total length cannot cover the header; with a 20-byte buffer the header itself is cut short.
        var ihl15 = PacketFactory.Ipv4(trailing: 40);
        ihl15[0] = 0x4F;
        Assert.Equal(IpParseStatus.LengthMismatch, Ipv4Packet.TryParse(ihl15, out _));
        var headerBeyondBuffer = PacketFactory.Ipv4(payloadLength: 0);
        headerBeyondBuffer[0] = 0x46;
        Assert.Equal(IpParseStatus.Truncated, Ipv4Packet.TryParse(headerBeyondBuffer, out _));

        var tooLong = PacketFactory.Ipv4(payloadLength: 8);
        tooLong[3] = 200;
        Assert.Equal(IpParseStatus.LengthMismatch, Ipv4Packet.TryParse(tooLong, out _));

        var belowHeader = PacketFactory.Ipv4(payloadLength: 8);
        belowHeader[2] = 0;
        belowHeader[3] = 10;
        Assert.Equal(IpParseStatus.LengthMismatch, Ipv4Packet.TryParse(belowHeader, out _));

        var v6TooLong = PacketFactory.Ipv6(payloadLength: 8);
        v6TooLong[5] = 9;
        Assert.Equal(IpParseStatus.LengthMismatch, Ipv6Packet.TryParse(v6TooLong, out _));

        // ECN helpers leave malformed packets alone.
        var copy = (byte[])shortIhl.Clone();
        IpPacket.ApplyDecapsulation(shortIhl, Engine.Ecn.Ce, out var status);
        Assert.Equal(IpParseStatus.BadHeaderLength, status);
        Assert.Equal(copy, shortIhl);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(10)]
    public void Ipv4_options_are_accepted_with_header_length_from_ihl(int optionWords)
    {
        // WireGuard forwards any IP packet; IGMP carries Router Alert (RFC 2113), so IHL > 5 must pass.
        var bytes = PacketFactory.Ipv4(tos: 0x01, payloadLength: 12, protocol: 2, optionWords: optionWords);
        Assert.Equal(IpParseStatus.Ok, Ipv4Packet.TryParse(bytes, out var packet));
        Assert.Equal(20 + optionWords * 4, packet.HeaderLengthBytes);
        Assert.Equal(20 + optionWords * 4 + 12, packet.TotalLength);
        Assert.Equal(12, packet.Payload.Length);
        Assert.Equal(0, packet.Payload[0]);
        Assert.Equal(11, packet.Payload[11]);
        Assert.Equal(Engine.Ecn.Ect1, packet.Ecn);
        Assert.True(packet.IsHeaderChecksumValid);
        Assert.Equal(IpParseStatus.Ok, IpPacket.Validate(bytes, out var total));
        Assert.Equal(packet.TotalLength, total);

        // The checksum check covers the options: corrupting an option byte must be caught.
        bytes[21] ^= 0x40;
        Assert.Equal(IpParseStatus.Ok, Ipv4Packet.TryParse(bytes, out var corrupted));
        Assert.False(corrupted.IsHeaderChecksumValid);
    }

    [Fact]
    public void Ipv4_total_length_below_option_header_is_a_length_mismatch()
    {
        var bytes = PacketFactory.Ipv4(payloadLength: 8, optionWords: 2);
        bytes[2] = 0;
        bytes[3] = 24; // header is 28 bytes
        Assert.Equal(IpParseStatus.LengthMismatch, Ipv4Packet.TryParse(bytes, out _));
    }

    [Fact]
    public void Every_truncation_of_a_valid_packet_is_rejected_without_exception()
    {
        foreach (var valid in new[] { PacketFactory.Ipv4(payloadLength: 30), PacketFactory.Ipv4(payloadLength: 30, optionWords: 4), PacketFactory.Ipv6(payloadLength: 30) })
        {
            for (int length = 0; length < valid.Length; length++)
            {
                var status = IpPacket.Validate(valid.AsSpan(0, length).ToArray(), out _);
                Assert.NotEqual(IpParseStatus.Ok, status);
            }
        }
    }

    [Fact]
    public void Checksum_update_matches_rfc1624_examples()
    {
        // RFC 1624 section 4: HC = 0xDD2F, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
        Assert.Equal(0x0000, Ipv4Checksum.Update(0xDD2F, 0x5555, 0x3285));
    }
}
