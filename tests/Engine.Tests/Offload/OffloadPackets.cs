using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Engine.Tests.Offload;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>Hand-built TCP/UDP packets with full checksums, and an independent checksum verifier.</summary>
internal static class OffloadPackets
{
    public const byte Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10, Urg = 0x20, Ece = 0x40, Cwr = 0x80;

    public static readonly byte[] Source4 = [10, 1, 2, 3];
    public static readonly byte[] Destination4 = [10, 9, 8, 7];
    public static readonly byte[] Source6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    public static readonly byte[] Destination6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    /// <summary>Payload byte i is a function of the TCP sequence number, so reordering or overlap shows.</summary>
    public static byte PayloadByte(uint sequence) => (byte)(sequence * 7 + (sequence >> 8));

    public static byte[] Tcp(bool ipv6, uint sequence, int payloadLength, byte flags = Ack, Ecn ecn = Ecn.Ect0,
        ushort id = 100, bool dontFragment = true, uint ack = 5000, ushort window = 512, int optionLength = 12, byte dscp = 0)
    {
        int l4 = ipv6 ? 40 : 20;
        int tcpHeader = 20 + optionLength;
        int length = l4 + tcpHeader + payloadLength;
        var p = new byte[length];
        WriteIp(p, ipv6, 6, ecn, id, dontFragment, dscp);
        Span<byte> t = p.AsSpan(l4);
        BinaryPrimitives.WriteUInt16BigEndian(t, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], 443);
        BinaryPrimitives.WriteUInt32BigEndian(t[4..], sequence);
        BinaryPrimitives.WriteUInt32BigEndian(t[8..], ack);
        t[12] = (byte)((tcpHeader / 4) << 4);
        t[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(t[14..], window);
        for (int i = 0; i < optionLength; i++)
        {
            t[20 + i] = i < 2 ? (byte)1 : (byte)(0x30 + i); // NOPs, then opaque option bytes (a timestamp)
        }
        for (int i = 0; i < payloadLength; i++)
        {
            t[tcpHeader + i] = PayloadByte(unchecked(sequence + (uint)i));
        }
        FillChecksum(p, ipv6, 6);
        return p;
    }

    /// <param name="payloadStart">Payload byte i is <see cref="PayloadByte"/>(payloadStart + i): datagrams
    /// that continue each other concatenate to one larger datagram's payload.</param>
    public static byte[] Udp(bool ipv6, int payloadLength, Ecn ecn = Ecn.Ect0, ushort id = 100,
        bool dontFragment = true, byte dscp = 0, ushort sourcePort = 40001, uint payloadStart = 0)
    {
        int l4 = ipv6 ? 40 : 20;
        int length = l4 + 8 + payloadLength;
        var p = new byte[length];
        WriteIp(p, ipv6, 17, ecn, id, dontFragment, dscp);
        Span<byte> u = p.AsSpan(l4);
        BinaryPrimitives.WriteUInt16BigEndian(u, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(u[2..], 53);
        BinaryPrimitives.WriteUInt16BigEndian(u[4..], (ushort)(8 + payloadLength));
        for (int i = 0; i < payloadLength; i++)
        {
            u[8 + i] = PayloadByte(payloadStart + (uint)i);
        }
        FillChecksum(p, ipv6, 17);
        return p;
    }

    private static void WriteIp(byte[] p, bool ipv6, byte protocol, Ecn ecn, ushort id, bool dontFragment, byte dscp)
    {
        if (ipv6)
        {
            p[0] = (byte)(0x60 | (dscp >> 2));
            p[1] = (byte)(((dscp & 3) << 6) | ((byte)ecn << 4) | 0x0A); // TC low bits, flow label 0xA1234
            p[2] = 0x12;
            p[3] = 0x34;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)(p.Length - 40));
            p[6] = protocol;
            p[7] = 64;
            Source6.CopyTo(p, 8);
            Destination6.CopyTo(p, 24);
        }
        else
        {
            p[0] = 0x45;
            p[1] = (byte)((dscp << 2) | (byte)ecn);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), id);
            p[6] = dontFragment ? (byte)0x40 : (byte)0;
            p[8] = 64;
            p[9] = protocol;
            Source4.CopyTo(p, 12);
            Destination4.CopyTo(p, 16);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Ipv4Checksum.Compute(p.AsSpan(0, 20)));
        }
    }

    /// <summary>Writes the full TCP/UDP checksum with the plain RFC 1071 code (not the code under test).</summary>
    public static void FillChecksum(byte[] p, bool ipv6, byte protocol)
    {
        int l4 = ipv6 ? 40 : 20;
        int at = l4 + (protocol == 6 ? 16 : 6);
        p[at] = 0;
        p[at + 1] = 0;
        ushort checksum = Ipv4Checksum.Compute(PseudoHeaderAndSegment(p, ipv6, protocol));
        if (checksum == 0 && protocol == 17)
        {
            checksum = 0xFFFF;
        }
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(at), checksum);
    }

    /// <summary>True if the TCP/UDP checksum verifies by full recomputation (RFC 1071: sum is all ones).</summary>
    public static bool TransportChecksumValid(ReadOnlySpan<byte> p)
    {
        bool ipv6 = p[0] >> 4 == 6;
        byte protocol = ipv6 ? p[6] : p[9];
        return Ipv4Checksum.Compute(PseudoHeaderAndSegment(p.ToArray(), ipv6, protocol)) == 0;
    }

    public static bool Ipv4HeaderChecksumValid(ReadOnlySpan<byte> p) => Ipv4Checksum.Compute(p[..20]) == 0;

    private static byte[] PseudoHeaderAndSegment(byte[] p, bool ipv6, byte protocol)
    {
        int l4 = ipv6 ? 40 : 20;
        int addressLength = ipv6 ? 16 : 4;
        int upper = p.Length - l4;
        var buffer = new byte[2 * addressLength + 8 + upper];
        p.AsSpan(ipv6 ? 8 : 12, 2 * addressLength).CopyTo(buffer);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(2 * addressLength), (uint)upper);
        buffer[2 * addressLength + 7] = protocol;
        p.AsSpan(l4).CopyTo(buffer.AsSpan(2 * addressLength + 8));
        return buffer;
    }

    /// <summary>A super-packet as the kernel hands it over with TSO: full-size headers, the pseudo-header
    /// sum in the checksum field (CHECKSUM_PARTIAL).</summary>
    public static byte[] AsPartial(byte[] fullChecksummed, bool ipv6, byte protocol)
    {
        var p = (byte[])fullChecksummed.Clone();
        WritePartialChecksum(p, ipv6, ipv6 ? 40 : 20, protocol);
        return p;
    }

    /// <summary>The transport checksum field as CHECKSUM_PARTIAL leaves it: the folded pseudo-header sum, for a transport header at <paramref name="l4"/>.</summary>
    public static void WritePartialChecksum(byte[] p, bool ipv6, int l4, byte protocol)
    {
        int at = l4 + (protocol == 6 ? 16 : 6);
        int addressLength = ipv6 ? 16 : 4;
        var pseudo = new byte[2 * addressLength + 8];
        p.AsSpan(ipv6 ? 8 : 12, 2 * addressLength).CopyTo(pseudo);
        BinaryPrimitives.WriteUInt32BigEndian(pseudo.AsSpan(2 * addressLength), (uint)(p.Length - l4));
        pseudo[2 * addressLength + 7] = protocol;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(at), (ushort)~Ipv4Checksum.Compute(pseudo));
    }

    public static PacketBuffer[] ToBuffers(PacketBufferPool pool, params byte[][] packets)
    {
        var buffers = new PacketBuffer[packets.Length];
        for (int i = 0; i < packets.Length; i++)
        {
            buffers[i] = pool.Rent();
            packets[i].CopyTo(buffers[i].Memory[PacketBuffer.Headroom..]);
            buffers[i].SetData(PacketBuffer.Headroom, packets[i].Length);
        }
        return buffers;
    }

    /// <summary>TcpCoalescer.FindRun or UdpCoalescer.FindRun.</summary>
    public delegate int FindRunFunction(ReadOnlySpan<PacketBuffer> packets, int start, Span<bool> taken, Span<int> members, int maxLength);

    /// <summary>The members of the run starting at <paramref name="start"/>, after checking that exactly they were marked taken.</summary>
    public static int[] RunOf(FindRunFunction findRun, PacketBuffer[] buffers, int start, int maxLength = 65535)
    {
        var taken = new bool[buffers.Length];
        var members = new int[buffers.Length];
        int count = findRun(buffers, start, taken, members, maxLength);
        for (int i = 0; i < buffers.Length; i++)
        {
            Assert.Equal(Array.IndexOf(members, i, 0, count) >= 0, taken[i]);
        }
        return members[..count];
    }

    /// <summary><see cref="RunOf"/> on pooled copies of <paramref name="packets"/>, returned to the pool afterwards.</summary>
    public static int[] MembersOf(FindRunFunction findRun, PacketBufferPool pool, byte[][] packets, int start = 0, int maxLength = 65535)
    {
        var buffers = ToBuffers(pool, packets);
        try
        {
            return RunOf(findRun, buffers, start, maxLength);
        }
        finally
        {
            ReturnAll(buffers);
        }
    }

    public static void ReturnAll(PacketBuffer[] buffers)
    {
        foreach (var b in buffers)
        {
            b.Return();
        }
    }
}
