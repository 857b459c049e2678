using System.Buffers.Binary;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Engine.Tests.Packets;

/// <summary>Builds well-formed IPv4 and IPv6 packets for tests.</summary>
internal static class PacketFactory
{
    /// <param name="optionWords">32-bit option words after the fixed header (IHL = 5 + optionWords); the
    /// first is a Router Alert option (RFC 2113), the rest are NOP/End-of-list padding with distinct bytes.</param>
    public static byte[] Ipv4(byte tos = 0, int payloadLength = 8, byte protocol = 17, uint source = 0x0A000001, uint destination = 0x0A000002, ushort id = 0x1234, byte ttl = 64, int trailing = 0, int optionWords = 0)
    {
        int headerLength = Ipv4Packet.HeaderLength + optionWords * 4;
        var bytes = new byte[headerLength + payloadLength + trailing];
        bytes[0] = (byte)(0x40 | (5 + optionWords));
        bytes[1] = tos;
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)(headerLength + payloadLength));
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4), id);
        bytes[8] = ttl;
        bytes[9] = protocol;
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(12), source);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(16), destination);
        for (int w = 0; w < optionWords; w++)
        {
            int at = Ipv4Packet.HeaderLength + w * 4;
            if (w == 0)
            {
                // Router Alert: type 148, length 4, value 0 (RFC 2113 section 2.1).
                bytes[at] = 148;
                bytes[at + 1] = 4;
            }
            else
            {
                // NOPs (type 1) with one varying byte so a checksum over only 20 bytes would differ.
                bytes[at] = 1;
                bytes[at + 1] = 1;
                bytes[at + 2] = 1;
                bytes[at + 3] = (byte)(w == optionWords - 1 ? 0 : 1);
            }
        }
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(10), Ipv4Checksum.Compute(bytes.AsSpan(0, headerLength)));
        for (int i = 0; i < payloadLength; i++)
        {
            bytes[headerLength + i] = (byte)i;
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
