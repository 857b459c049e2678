using System.Buffers.Binary;

namespace Firezone.Actors.Native.Tests;

/// <summary>Builds and recognises IPv4 ICMP echo requests (RFC 792) and turns one into the reply, in place.</summary>
internal static class IcmpEcho
{
    public static bool IsEchoRequestTo(ReadOnlySpan<byte> packet, ReadOnlySpan<byte> destination4)
    {
        if (packet.Length < 28 || (packet[0] >> 4) != 4)
        {
            return false; // IPv6 router solicitations and the like
        }
        int headerLength = (packet[0] & 0x0F) * 4;
        return packet[9] == 1 // ICMP
            && packet.Slice(16, 4).SequenceEqual(destination4)
            && packet[headerLength] == 8; // echo request
    }

    /// <summary>An echo request from <paramref name="source4"/> to <paramref name="destination4"/> with 16 bytes of data; returns its length.</summary>
    public static int WriteRequest(Span<byte> packet, ReadOnlySpan<byte> source4, ReadOnlySpan<byte> destination4, ushort sequence)
    {
        const int length = 20 + 8 + 16;
        packet[..length].Clear();
        packet[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(packet[2..], length);
        BinaryPrimitives.WriteUInt16BigEndian(packet[4..], sequence); // identification
        packet[8] = 64; // TTL
        packet[9] = 1; // ICMP
        source4.CopyTo(packet[12..]);
        destination4.CopyTo(packet[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(packet[10..], InternetChecksum(packet[..20]));
        Span<byte> icmp = packet[20..length];
        icmp[0] = 8; // echo request
        BinaryPrimitives.WriteUInt16BigEndian(icmp[4..], 0x4658); // identifier
        BinaryPrimitives.WriteUInt16BigEndian(icmp[6..], sequence);
        icmp[8..].Fill(0x61);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], InternetChecksum(icmp));
        return length;
    }

    /// <summary>True for an echo reply to <paramref name="destination4"/> with this sequence number.</summary>
    public static bool IsEchoReplyTo(ReadOnlySpan<byte> packet, ReadOnlySpan<byte> destination4, ushort sequence) =>
        packet.Length >= 28 && (packet[0] >> 4) == 4 && packet[9] == 1
        && packet.Slice(16, 4).SequenceEqual(destination4)
        && packet[(packet[0] & 0x0F) * 4] == 0
        && BinaryPrimitives.ReadUInt16BigEndian(packet[((packet[0] & 0x0F) * 4 + 6)..]) == sequence;

    /// <summary>Swaps the addresses (the IPv4 header checksum is unchanged by a swap) and makes it an echo reply.</summary>
    public static void TurnIntoReply(Span<byte> packet)
    {
        int headerLength = (packet[0] & 0x0F) * 4;
        Span<byte> source = stackalloc byte[4];
        packet.Slice(12, 4).CopyTo(source);
        packet.Slice(16, 4).CopyTo(packet.Slice(12, 4));
        source.CopyTo(packet.Slice(16, 4));
        Span<byte> icmp = packet[headerLength..];
        icmp[0] = 0; // echo reply
        icmp[2] = 0;
        icmp[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], InternetChecksum(icmp));
    }

    /// <summary>RFC 1071.</summary>
    public static ushort InternetChecksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        int i = 0;
        for (; i + 1 < data.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        }
        if (i < data.Length)
        {
            sum += (uint)data[i] << 8;
        }
        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (ushort)~sum;
    }
}
