using System.Buffers.Binary;
using System.Net;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Actors.Tests.Fakes;

/// <summary>Well-formed inner packets for the tests.</summary>
public static class Packets
{
    /// <summary>An IPv4 UDP packet; <paramref name="marker"/> (up to 8 bytes) starts the payload, the rest is a pattern.</summary>
    public static byte[] Ipv4(string source, string destination, Ecn ecn = Ecn.NotEct, int payloadLength = 64, ushort id = 1, byte[]? marker = null)
    {
        var bytes = new byte[Ipv4Packet.HeaderLength + payloadLength];
        bytes[0] = 0x45;
        bytes[1] = (byte)(0xB8 | (int)ecn); // DSCP EF, to check the inner DSCP survives
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)bytes.Length);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4), id);
        bytes[8] = 64;
        bytes[9] = 17;
        IPAddress.Parse(source).TryWriteBytes(bytes.AsSpan(12, 4), out _);
        IPAddress.Parse(destination).TryWriteBytes(bytes.AsSpan(16, 4), out _);
        for (int i = 0; i < payloadLength; i++)
        {
            bytes[20 + i] = (byte)(i * 7 + id);
        }
        marker?.CopyTo(bytes.AsSpan(20));
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(10), Ipv4Checksum.Compute(bytes.AsSpan(0, 20)));
        return bytes;
    }

    public static byte[] Ipv6(string source, string destination, Ecn ecn = Ecn.NotEct, int payloadLength = 64)
    {
        var bytes = new byte[Ipv6Packet.HeaderLength + payloadLength];
        uint first = 6u << 28 | (uint)ecn << 20;
        BinaryPrimitives.WriteUInt32BigEndian(bytes, first);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4), (ushort)payloadLength);
        bytes[6] = 17;
        bytes[7] = 64;
        IPAddress.Parse(source).TryWriteBytes(bytes.AsSpan(8, 16), out _);
        IPAddress.Parse(destination).TryWriteBytes(bytes.AsSpan(24, 16), out _);
        return bytes;
    }

    public static Ecn EcnOf(byte[] packet)
    {
        Assert.Equal(IpParseStatus.Ok, IpPacket.TryGetEcn(packet, out var ecn));
        return ecn;
    }

    public static ushort IdOf(byte[] ipv4) => BinaryPrimitives.ReadUInt16BigEndian(ipv4.AsSpan(4));

    public static bool ChecksumValid(byte[] ipv4) => Ipv4Checksum.Compute(ipv4.AsSpan(0, 20)) == 0;
}
