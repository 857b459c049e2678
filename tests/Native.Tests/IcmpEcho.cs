using System.Buffers.Binary;

namespace Firezone.Actors.Native.Tests;

/// <summary>Recognises an IPv4 ICMP echo request (RFC 792) and turns it into the reply, in place.</summary>
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
