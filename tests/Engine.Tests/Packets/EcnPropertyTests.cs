using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Engine.Tests.Packets;

/// <summary>Property tests over random valid headers (FsCheck).</summary>
public class EcnPropertyTests
{
    [Property(MaxTest = 2000)]
    public bool Ipv4_set_ecn_keeps_checksum_valid_and_changes_only_ecn_bits(byte tos, ushort id, byte ttl, byte protocol, uint source, uint destination, byte payload, byte newEcn)
    {
        var bytes = PacketFactory.Ipv4(tos: tos, payloadLength: payload, protocol: protocol, source: source, destination: destination, id: id, ttl: ttl);
        var before = (byte[])bytes.Clone();
        if (Ipv4Packet.TryParse(bytes, out var packet) != IpParseStatus.Ok)
        {
            return false;
        }
        var ecn = (Engine.Ecn)(newEcn & 3);
        packet.SetEcn(ecn);
        bool othersSame = true;
        for (int i = 0; i < bytes.Length; i++)
        {
            if (i is 1 or 10 or 11)
            {
                continue;
            }
            othersSame &= bytes[i] == before[i];
        }
        return packet.Ecn == ecn
            && (bytes[1] & 0xFC) == (before[1] & 0xFC)
            && Ipv4Checksum.Compute(bytes.AsSpan(0, 20)) == 0
            && othersSame;
    }

    [Property(MaxTest = 2000)]
    public bool Ipv4_with_options_set_ecn_keeps_full_header_checksum_valid(byte tos, ushort id, byte optionWords, byte payload, byte newEcn)
    {
        int words = 1 + optionWords % 10;
        var bytes = PacketFactory.Ipv4(tos: tos, payloadLength: payload, id: id, optionWords: words);
        var before = (byte[])bytes.Clone();
        if (Ipv4Packet.TryParse(bytes, out var packet) != IpParseStatus.Ok)
        {
            return false;
        }
        var ecn = (Engine.Ecn)(newEcn & 3);
        packet.SetEcn(ecn);
        bool othersSame = true;
        for (int i = 0; i < bytes.Length; i++)
        {
            if (i is 1 or 10 or 11)
            {
                continue;
            }
            othersSame &= bytes[i] == before[i];
        }
        return packet.Ecn == ecn
            && packet.IsHeaderChecksumValid
            && Ipv4Checksum.Compute(bytes.AsSpan(0, 20 + words * 4)) == 0
            && othersSame;
    }

    [Property(MaxTest = 2000)]
    public bool Ipv6_set_ecn_changes_only_ecn_bits(byte trafficClass, uint flowLabel, byte payload, byte newEcn)
    {
        var bytes = PacketFactory.Ipv6(trafficClass: trafficClass, payloadLength: payload, flowLabel: flowLabel);
        var before = (byte[])bytes.Clone();
        if (Ipv6Packet.TryParse(bytes, out var packet) != IpParseStatus.Ok)
        {
            return false;
        }
        var ecn = (Engine.Ecn)(newEcn & 3);
        packet.SetEcn(ecn);
        return packet.Ecn == ecn
            && packet.TrafficClass == ((trafficClass & 0xFC) | (int)ecn)
            && bytes[0] == before[0]
            && (bytes[1] & 0xCF) == (before[1] & 0xCF)
            && bytes.AsSpan(2).SequenceEqual(before.AsSpan(2));
    }

    [Property(MaxTest = 2000)]
    public bool Decapsulation_of_random_headers_follows_table_and_keeps_checksum(byte tos, uint source, byte outerBits, bool v6)
    {
        var outer = (Engine.Ecn)(outerBits & 3);
        var bytes = v6 ? PacketFactory.Ipv6(trafficClass: tos) : PacketFactory.Ipv4(tos: tos, source: source);
        var inner = (Engine.Ecn)(tos & 3);
        var expected = EcnDecapsulation.Decapsulate(inner, outer);
        var result = IpPacket.ApplyDecapsulation(bytes, outer, out var status);
        IpPacket.TryGetEcn(bytes, out var after);
        bool checksumOk = v6 || Ipv4Checksum.Compute(bytes.AsSpan(0, 20)) == 0;
        return status == IpParseStatus.Ok
            && result == expected
            && (result.IsDrop ? after == inner : after == result.Inner)
            && checksumOk;
    }

    [Property(MaxTest = 3000)]
    public bool Random_bytes_never_throw(byte[] bytes, byte outerBits)
    {
        var copy = (byte[])bytes.Clone();
        IpPacket.Validate(copy, out _);
        IpPacket.ApplyDecapsulation(copy, (Engine.Ecn)(outerBits & 3), out _);
        return true;
    }
}
