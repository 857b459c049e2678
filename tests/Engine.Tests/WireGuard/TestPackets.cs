using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Engine.Tests.WireGuard;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>Builds inner IP packets in pooled buffers the way the TUN reader would (data at the headroom).</summary>
public static class TestPackets
{
    /// <summary>An IPv4/UDP packet of <paramref name="totalLength"/> bytes from <paramref name="source"/> to <paramref name="destination"/>; payload bytes are a function of <paramref name="tag"/>.</summary>
    public static byte[] Ipv4(byte[] source, byte[] destination, int totalLength, Ecn ecn = Ecn.NotEct, int tag = 0)
    {
        var packet = new byte[totalLength];
        packet[0] = 0x45;
        packet[1] = (byte)ecn;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)totalLength);
        packet[8] = 64;
        packet[9] = 17;
        source.CopyTo(packet, 12);
        destination.CopyTo(packet, 16);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(10), Ipv4Checksum.Compute(packet.AsSpan(0, 20)));
        for (int i = 20; i < totalLength; i++)
        {
            packet[i] = (byte)(i * 7 + tag);
        }
        if (totalLength >= 24)
        {
            BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(20), tag); // distinct tags, distinct packets
        }
        return packet;
    }

    /// <summary>An IPv6 packet of <paramref name="totalLength"/> bytes (40-byte header plus payload).</summary>
    public static byte[] Ipv6(byte[] source16, byte[] destination16, int totalLength, int tag = 0)
    {
        var packet = new byte[totalLength];
        packet[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), (ushort)(totalLength - 40));
        packet[6] = 17;
        packet[7] = 64;
        source16.CopyTo(packet, 8);
        destination16.CopyTo(packet, 24);
        for (int i = 40; i < totalLength; i++)
        {
            packet[i] = (byte)(i * 3 + tag);
        }
        return packet;
    }

    /// <summary>Rents a buffer and copies <paramref name="packet"/> to its headroom offset, as a TUN read does.</summary>
    public static PacketBuffer Rent(PacketBufferPool pool, byte[] packet, Ecn outerEcn = Ecn.NotEct)
    {
        var buffer = pool.Rent();
        packet.CopyTo(buffer.Writable);
        buffer.Length = packet.Length;
        buffer.Ecn = outerEcn;
        return buffer;
    }
}
