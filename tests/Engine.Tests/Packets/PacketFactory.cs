using System.Buffers.Binary;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Engine.Tests.Packets;

/// <summary>Builds well-formed IPv4 and IPv6 packets for tests.</summary>
internal static class PacketFactory
{
    public static byte[] Ipv4(byte tos = 0, int payloadLength = 8, byte protocol = 17, uint source = 0x0A000001, uint destination = 0x0A000002, ushort id = 0x1234, byte ttl = 64, int trailing = 0)
    {
        var bytes = new byte[Ipv4Packet.HeaderLength + payloadLength + trailing];
        bytes[0] = 0x45;
        bytes[1] = tos;
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)(Ipv4Packet.HeaderLength + payloadLength));
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4), id);
        bytes[8] = ttl;
        bytes[9] = protocol;
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(12), source);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(16), destination);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(10), Ipv4Checksum.Compute(bytes.AsSpan(0, 20)));
        for (int i = 0; i < payloadLength; i++)
        {
            bytes[20 + i] = (byte)i;
        }
        return bytes;
    }

    public static byte[] Ipv6(byte trafficClass = 0, int payloadLength = 8, byte nextHeader = 17, uint flowLabel = 0x12345, byte seed = 1)
    {
        var bytes = new byte[Ipv6Packet.HeaderLength + payloadLength];
        uint first = 6u << 28 | (uint)trafficClass << 20 | (flowLabel & 0xFFFFF);
        BinaryPrimitives.WriteUInt32BigEndian(bytes, first);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4), (ushort)payloadLength);
        bytes[6] = nextHeader;
        bytes[7] = 64;
        for (int i = 0; i < 32; i++)
        {
            bytes[8 + i] = (byte)(seed + i);
        }
        return bytes;
    }
}
