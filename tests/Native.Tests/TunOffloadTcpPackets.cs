using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// IPv4 and IPv6 TCP packets for the offload tests, where the test plays the remote host of a TCP connection
/// through the TUN device. Checksums use the plain RFC 1071 code, independent of the offload code.
/// </summary>
internal static class TunOffloadTcpPackets
{
    public const byte Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10;

    public readonly record struct Tcp(byte[] Source, byte[] Destination, ushort SourcePort, ushort DestinationPort,
        uint Sequence, uint AckNumber, byte Flags, int PayloadOffset, int PayloadLength, byte Tos);

    /// <summary>Parses an IPv4 (no IP options) or IPv6 (no extension headers) TCP packet, or returns null.</summary>
    public static Tcp? Parse(ReadOnlySpan<byte> p)
    {
        int l4;
        int addressLength;
        if (p.Length >= 40 && p[0] == 0x45 && p[9] == 6)
        {
            l4 = 20;
            addressLength = 4;
        }
        else if (p.Length >= 60 && p[0] >> 4 == 6 && p[6] == 6)
        {
            l4 = 40;
            addressLength = 16;
        }
        else
        {
            return null;
        }
        int sourceAt = l4 == 20 ? 12 : 8;
        int dataOffset = (p[l4 + 12] >> 4) * 4;
        byte tos = l4 == 20 ? p[1] : (byte)(((p[0] & 0x0F) << 4) | (p[1] >> 4));
        return new Tcp(p.Slice(sourceAt, addressLength).ToArray(), p.Slice(sourceAt + addressLength, addressLength).ToArray(),
            BinaryPrimitives.ReadUInt16BigEndian(p[l4..]), BinaryPrimitives.ReadUInt16BigEndian(p[(l4 + 2)..]),
            BinaryPrimitives.ReadUInt32BigEndian(p[(l4 + 4)..]), BinaryPrimitives.ReadUInt32BigEndian(p[(l4 + 8)..]),
            p[l4 + 13], l4 + dataOffset, p.Length - l4 - dataOffset, tos);
    }

    /// <summary>IPv4 when the addresses are 4 bytes, IPv6 when 16.</summary>
    public static byte[] Build(byte[] source, byte[] destination, ushort sourcePort, ushort destinationPort,
        uint sequence, uint ack, byte flags, ReadOnlySpan<byte> payload, ushort window = 65535, ReadOnlySpan<byte> options = default,
        ushort id = 0, byte tos = 0)
    {
        int tcpLength = 20 + options.Length + payload.Length;
        byte[] p = WithIpHeader(source, destination, 6, tcpLength, id, tos, out int l4);
        Span<byte> t = p.AsSpan(l4);
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

    /// <summary>A UDP datagram with its checksum (RFC 768); IPv4 when the addresses are 4 bytes, IPv6 when 16.</summary>
    public static byte[] BuildUdp(byte[] source, byte[] destination, ushort sourcePort, ushort destinationPort,
        ReadOnlySpan<byte> payload, ushort id = 0, byte tos = 0)
    {
        byte[] p = WithIpHeader(source, destination, 17, 8 + payload.Length, id, tos, out int l4);
        Span<byte> u = p.AsSpan(l4);
        BinaryPrimitives.WriteUInt16BigEndian(u, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(u[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(u[4..], (ushort)(8 + payload.Length));
        payload.CopyTo(u[8..]);
        ushort checksum = Ipv4Checksum.Compute(PseudoHeaderAndSegment(p));
        BinaryPrimitives.WriteUInt16BigEndian(u[6..], checksum == 0 ? (ushort)0xFFFF : checksum);
        return p;
    }

    /// <summary>A packet with its IP header filled in (IPv4 with DF) and room for <paramref name="l4Length"/> bytes after it.</summary>
    private static byte[] WithIpHeader(byte[] source, byte[] destination, byte protocol, int l4Length, ushort id, byte tos, out int l4)
    {
        bool ipv6 = source.Length == 16;
        l4 = ipv6 ? 40 : 20;
        var p = new byte[l4 + l4Length];
        if (ipv6)
        {
            p[0] = (byte)(0x60 | (tos >> 4));
            p[1] = (byte)(tos << 4);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)l4Length);
            p[6] = protocol;
            p[7] = 64;
            source.CopyTo(p, 8);
            destination.CopyTo(p, 24);
        }
        else
        {
            p[0] = 0x45;
            p[1] = tos;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), id);
            p[6] = 0x40; // DF
            p[8] = 64;
            p[9] = protocol;
            source.CopyTo(p, 12);
            destination.CopyTo(p, 16);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Ipv4Checksum.Compute(p.AsSpan(0, 20)));
        }
        return p;
    }

    /// <summary>IPv4 header checksum (IPv4 only) and TCP checksum, by full recomputation.</summary>
    public static bool ChecksumsValid(ReadOnlySpan<byte> p) =>
        (p[0] >> 4 == 6 || Ipv4Checksum.Compute(p[..20]) == 0) && Ipv4Checksum.Compute(PseudoHeaderAndSegment(p)) == 0;

    /// <summary>Pseudo-header (RFC 793 section 3.1, RFC 768, RFC 8200 section 8.1; the same sum either way) and segment.</summary>
    private static byte[] PseudoHeaderAndSegment(ReadOnlySpan<byte> p)
    {
        bool ipv6 = p[0] >> 4 == 6;
        int l4 = ipv6 ? 40 : 20;
        int addresses = ipv6 ? 32 : 8;
        var buffer = new byte[addresses + 8 + p.Length - l4];
        p.Slice(ipv6 ? 8 : 12, addresses).CopyTo(buffer);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(addresses), (uint)(p.Length - l4));
        buffer[addresses + 7] = ipv6 ? p[6] : p[9];
        p[l4..].CopyTo(buffer.AsSpan(addresses + 8));
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
