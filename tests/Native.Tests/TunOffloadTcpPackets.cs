using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// IPv4/TCP packets for the offload tests, where the test plays the remote host of a TCP connection
/// through the TUN device. Checksums use the plain RFC 1071 code, independent of the offload code.
/// </summary>
internal static class TunOffloadTcpPackets
{
    public const byte Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10;

    public readonly record struct Tcp(byte[] Source, byte[] Destination, ushort SourcePort, ushort DestinationPort,
        uint Sequence, uint AckNumber, byte Flags, int PayloadOffset, int PayloadLength, byte Tos);

    /// <summary>Parses an IPv4 TCP packet (no options in the IP header), or returns null.</summary>
    public static Tcp? Parse(ReadOnlySpan<byte> p)
    {
        if (p.Length < 40 || p[0] != 0x45 || p[9] != 6)
        {
            return null;
        }
        int dataOffset = (p[32] >> 4) * 4;
        return new Tcp(p.Slice(12, 4).ToArray(), p.Slice(16, 4).ToArray(),
            BinaryPrimitives.ReadUInt16BigEndian(p[20..]), BinaryPrimitives.ReadUInt16BigEndian(p[22..]),
            BinaryPrimitives.ReadUInt32BigEndian(p[24..]), BinaryPrimitives.ReadUInt32BigEndian(p[28..]),
            p[33], 20 + dataOffset, p.Length - 20 - dataOffset, p[1]);
    }

    public static byte[] Build(byte[] source, byte[] destination, ushort sourcePort, ushort destinationPort,
        uint sequence, uint ack, byte flags, ReadOnlySpan<byte> payload, ushort window = 65535, ReadOnlySpan<byte> options = default,
        ushort id = 0, byte tos = 0)
    {
        int tcpLength = 20 + options.Length + payload.Length;
        var p = new byte[20 + tcpLength];
        p[0] = 0x45;
        p[1] = tos;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), id);
        p[6] = 0x40; // DF
        p[8] = 64;
        p[9] = 6;
        source.CopyTo(p, 12);
        destination.CopyTo(p, 16);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Ipv4Checksum.Compute(p.AsSpan(0, 20)));
        Span<byte> t = p.AsSpan(20);
        BinaryPrimitives.WriteUInt16BigEndian(t, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(t[4..], sequence);
        BinaryPrimitives.WriteUInt32BigEndian(t[8..], ack);
        t[12] = (byte)(((20 + options.Length) / 4) << 4);
        t[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(t[14..], window);
        options.CopyTo(t[20..]);
        payload.CopyTo(t[(20 + options.Length)..]);
        BinaryPrimitives.WriteUInt16BigEndian(t[16..], Ipv4Checksum.Compute(PseudoHeaderAndSegment(p)));
        return p;
    }

    public static bool ChecksumsValid(ReadOnlySpan<byte> p) =>
        Ipv4Checksum.Compute(p[..20]) == 0 && Ipv4Checksum.Compute(PseudoHeaderAndSegment(p)) == 0;

    private static byte[] PseudoHeaderAndSegment(ReadOnlySpan<byte> p)
    {
        var buffer = new byte[12 + p.Length - 20];
        p.Slice(12, 8).CopyTo(buffer);
        buffer[9] = 6;
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(10), (ushort)(p.Length - 20));
        p[20..].CopyTo(buffer.AsSpan(12));
        return buffer;
    }

    public static PacketBuffer ToBuffer(PacketBufferPool pool, byte[] packet)
    {
        PacketBuffer buffer = pool.Rent();
        packet.CopyTo(buffer.Memory[PacketBuffer.Headroom..]);
        buffer.SetData(PacketBuffer.Headroom, packet.Length);
        return buffer;
    }
}
