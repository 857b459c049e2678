using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Engine.Offload;

/// <summary>
/// The IP-level rules of software GRO that <see cref="TcpCoalescer"/> and <see cref="UdpCoalescer"/>
/// share: which packets can be read (IPv4 without options or fragments, IPv6 without extension
/// headers), which belong to one flow, which IP header fields must be equal for the kernel's
/// segmentation to give every packet back as it was (so also the ECN codepoint), which checksums
/// must verify before a packet may merge, and the merged header's lengths and checksums.
/// </summary>
internal static class MergeableIpHeader
{
    /// <summary>
    /// DF in the IPv4 flags and fragment offset word. Any other bit there (MF, an offset, or the
    /// reserved bit, RFC 791 section 3.1) keeps a packet out of a run, as in inet_gro_receive:
    /// segmentation copies the head's word to every packet, so a follower's reserved bit would be
    /// lost or gained (SameIpHeader compares only DF).
    /// </summary>
    private const int DontFragment = 0x4000;

    /// <summary>Whether a packet <see cref="TryParse"/> took carries the CE codepoint (RFC 3168 section 5).</summary>
    public static bool IsCe(ReadOnlySpan<byte> packet, bool isIpv6) =>
        (isIpv6 ? (packet[1] >> 4) & 0b11 : packet[1] & 0b11) == (int)Ecn.Ce;

    /// <summary>
    /// IPv4 (header length 20, not a fragment, reserved flag clear) or IPv6 (no extension header) carrying
    /// <paramref name="protocol"/> directly, with an IP length that matches the packet's.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> packet, byte protocol, out bool isIpv6, out int l4)
    {
        isIpv6 = false;
        l4 = 0;
        if (packet.Length >= 20 && packet[0] == 0x45)
        {
            if (BinaryPrimitives.ReadUInt16BigEndian(packet[2..]) != packet.Length
                || (BinaryPrimitives.ReadUInt16BigEndian(packet[6..]) & ~DontFragment) != 0
                || packet[9] != protocol)
            {
                return false;
            }
            l4 = 20;
            return true;
        }
        if (packet.Length >= 40 && packet[0] >> 4 == 6)
        {
            if (BinaryPrimitives.ReadUInt16BigEndian(packet[4..]) + 40 != packet.Length || packet[6] != protocol)
            {
                return false;
            }
            isIpv6 = true;
            l4 = 40;
            return true;
        }
        return false;
    }

    /// <summary>
    /// False only for a packet certainly of another flow than <paramref name="head"/> (parsed, its
    /// transport header at <paramref name="headL4"/>): other addresses, another transport, other
    /// ports. Anything this cannot read (IPv4 options or fragments, IPv6 extension headers) counts as
    /// the same flow, so a run never overtakes it.
    /// </summary>
    public static bool MaybeSameFlow(ReadOnlySpan<byte> head, bool isIpv6, int headL4, ReadOnlySpan<byte> packet, byte protocol)
    {
        if (packet.Length < 20 || packet[0] >> 4 != (isIpv6 ? 6 : 4))
        {
            return false;
        }
        int l4;
        if (isIpv6)
        {
            if (packet.Length < 40 || !head.Slice(8, 32).SequenceEqual(packet.Slice(8, 32)))
            {
                return false;
            }
            byte next = packet[6];
            if (next != protocol)
            {
                return next is not (6 or 17 or 58); // TCP, UDP, ICMPv6: another flow; an extension header: maybe
            }
            l4 = 40;
        }
        else
        {
            if (!head.Slice(12, 8).SequenceEqual(packet.Slice(12, 8)) || packet[9] != protocol)
            {
                return false;
            }
            if (packet[0] != 0x45 || (BinaryPrimitives.ReadUInt16BigEndian(packet[6..]) & ~DontFragment) != 0)
            {
                return true;
            }
            l4 = 20;
        }
        return packet.Length < l4 + 4 || head.Slice(headL4, 4).SequenceEqual(packet.Slice(l4, 4));
    }

    /// <summary>
    /// The IP header fields segmentation copies from the head are equal: all but length,
    /// identification and checksum. IPv6: version, traffic class (DSCP and ECN), flow label, next
    /// header, hop limit, addresses. IPv4: TOS (DSCP and ECN), DF, TTL, addresses; without DF the
    /// identification must count up (<paramref name="index"/> from the head's), as the kernel
    /// re-creates it on segmentation (inet_gro_receive's flush_id).
    /// </summary>
    public static bool SameIpHeader(ReadOnlySpan<byte> head, bool isIpv6, ReadOnlySpan<byte> packet, int index)
    {
        if (isIpv6)
        {
            return head[..4].SequenceEqual(packet[..4]) && head.Slice(6, 34).SequenceEqual(packet.Slice(6, 34));
        }
        if (head[1] != packet[1] || (head[6] & 0x40) != (packet[6] & 0x40) || head[8] != packet[8]
            || !head.Slice(12, 8).SequenceEqual(packet.Slice(12, 8)))
        {
            return false;
        }
        return (head[6] & 0x40) != 0
            || BinaryPrimitives.ReadUInt16BigEndian(packet[4..]) == (ushort)(BinaryPrimitives.ReadUInt16BigEndian(head[4..]) + index);
    }

    /// <summary>
    /// Copies the head (the first member) whole into <paramref name="destination"/>, then the payload
    /// of every other member after its <paramref name="headerLength"/> bytes of headers (the same for
    /// all members of a run); returns the merged length.
    /// </summary>
    public static int Concatenate(ReadOnlySpan<PacketBuffer> packets, ReadOnlySpan<int> members, int headerLength, Span<byte> destination)
    {
        ReadOnlySpan<byte> head = packets[members[0]].Data;
        head.CopyTo(destination);
        int length = head.Length;
        for (int m = 1; m < members.Length; m++)
        {
            ReadOnlySpan<byte> payload = packets[members[m]].Data[headerLength..];
            payload.CopyTo(destination[length..]);
            length += payload.Length;
        }
        return length;
    }

    /// <summary>
    /// The checksums of a parsed packet verify: the IPv4 header checksum (RFC 791; IPv6 has none)
    /// and the transport checksum (RFC 793 and RFC 768 with the pseudo-header; RFC 8200 section 8.1).
    /// A packet that fails must not be merged: the kernel trusts the super-packet's checksums
    /// (<see cref="FinishMerged"/> writes a fresh IPv4 header checksum, and the transport checksum is
    /// CHECKSUM_PARTIAL), so a corrupt packet merged would come out repaired. Alone, the kernel drops
    /// it, as its own GRO would have (inet_gro_receive refuses a header whose ip_fast_csum fails).
    /// </summary>
    public static bool ChecksumsValid(ReadOnlySpan<byte> packet, bool isIpv6, int l4, byte protocol) =>
        (isIpv6 || InternetChecksum.Sum(packet[..l4]) == 0xFFFF)
        && InternetChecksum.Sum(packet[l4..], PseudoHeaderSum(packet, isIpv6, protocol, packet.Length - l4)) == 0xFFFF;

    /// <summary>
    /// Writes a merged packet's IP length (IPv4: and header checksum) and returns the folded
    /// pseudo-header sum its transport checksum field holds for CHECKSUM_PARTIAL.
    /// </summary>
    public static ushort FinishMerged(Span<byte> packet, bool isIpv6, int l4, int length, byte protocol)
    {
        if (isIpv6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(packet[4..], (ushort)(length - 40));
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(packet[2..], (ushort)length);
            packet[10] = 0;
            packet[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(packet[10..], InternetChecksum.Finish(InternetChecksum.Sum(packet[..l4])));
        }
        return PseudoHeaderSum(packet, isIpv6, protocol, length - l4);
    }

    private static ushort PseudoHeaderSum(ReadOnlySpan<byte> packet, bool isIpv6, byte protocol, int upperLayerLength) => isIpv6
        ? InternetChecksum.PseudoHeaderSum(packet.Slice(8, 16), packet.Slice(24, 16), protocol, upperLayerLength)
        : InternetChecksum.PseudoHeaderSum(packet.Slice(12, 4), packet.Slice(16, 4), protocol, upperLayerLength);
}
