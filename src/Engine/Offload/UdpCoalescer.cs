using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Engine.Offload;

/// <summary>
/// Software GRO for UDP datagrams written to a TUN device with IFF_VNET_HDR (Linux 6.2+, when the
/// device took TUN_F_USO4/6): merges a run of datagrams of one flow into one super-packet with a
/// virtio_net_hdr (gso_type UDP_L4, NEEDS_CSUM), so the kernel takes up to 64 datagrams in one write
/// and splits them again (udp_rcv_segment) before a socket without UDP_GRO sees them. Without it a
/// UDP flow costs one write, and often one wake-up of the receiving process, per datagram.
///
/// The rules follow the kernel's udp_gro_receive_segment and wireguard-go's udpGRO: same addresses
/// and ports; the same IP header apart from length, identification and checksum
/// (<see cref="MergeableIpHeader"/>), so the same ECN
/// codepoint (a CE-marked datagram is never merged with unmarked ones, RFC 3168 section 5, RFC 6040
/// section 4); every datagram but the last of the same payload size, the last no larger; no IPv4
/// options or fragments, no IPv6 extension headers; a valid checksum on every datagram (an IPv4
/// datagram without one is written alone), because the kernel trusts the super-packet's
/// (CHECKSUM_PARTIAL) and fills in each datagram's own; and a valid IPv4 header checksum, because
/// the super-packet gets a fresh one (inet_gro_receive checks it too).
///
/// Within one batch, as <see cref="TcpCoalescer"/>: datagrams of one flow are never reordered;
/// datagrams of different flows may be (a super-packet goes out where its first datagram was).
/// </summary>
public static class UdpCoalescer
{
    private const byte ProtocolUdp = 17;
    private const int UdpHeaderLength = 8;

    /// <summary>csum_offset of the UDP checksum field (RFC 768).</summary>
    public const int UdpChecksumOffset = 6;

    /// <summary>
    /// The most datagrams in one super-packet: UDP_MAX_SEGMENTS of the kernels that first took USO
    /// from a TUN device (later kernels allow more).
    /// </summary>
    public const int MaxSegments = 64;

    /// <summary>True if <paramref name="packet"/> is IPv4 or IPv6 carrying UDP directly (a possible head of a run).</summary>
    public static bool IsUdp(ReadOnlySpan<byte> packet) =>
        packet.Length >= 28 && (packet[0] >> 4 == 4 ? packet[9] == ProtocolUdp : packet.Length >= 48 && packet[0] >> 4 == 6 && packet[6] == ProtocolUdp);

    /// <summary>
    /// Collects the datagrams that form one super-packet with the head at <paramref name="start"/>:
    /// later untaken datagrams of the same flow, in batch order, while each one can follow the
    /// previous. Packets of other flows are skipped (left for later); the scan stops at the first
    /// packet of this flow that cannot be appended. Marks the members in <paramref name="taken"/> and
    /// writes their indices to <paramref name="members"/>; returns how many (1 if the head merges
    /// with nothing). The super-packet stays within <paramref name="maxLength"/> bytes (without the
    /// virtio_net_hdr) and <see cref="MaxSegments"/> datagrams.
    /// </summary>
    public static int FindRun(ReadOnlySpan<PacketBuffer> packets, int start, Span<bool> taken, Span<int> members, int maxLength)
    {
        taken[start] = true;
        members[0] = start;
        ReadOnlySpan<byte> head = packets[start].Data;
        if (start + 1 >= packets.Length || members.Length < 2 || !TryParseHeaders(head, out Datagram first))
        {
            return 1;
        }
        // The head's checksums are verified once a partner turns up: a datagram that merges with
        // nothing (DNS, many small flows) is not summed for nothing.
        bool headVerified = false;
        // The super-packet's IP length field is 16 bits (IPv4 total length, IPv6 payload length), and
        // so is the UDP length field that covers the whole super-packet.
        int limit = Math.Min(maxLength, first.L4Offset + 65535);
        if (!first.IsIpv6)
        {
            limit = Math.Min(limit, 65535);
        }
        int total = head.Length;
        int count = 1;
        int maxCount = Math.Min(members.Length, MaxSegments);
        for (int i = start + 1; i < packets.Length && count < maxCount; i++)
        {
            if (taken[i])
            {
                continue;
            }
            ReadOnlySpan<byte> packet = packets[i].Data;
            if (!MergeableIpHeader.MaybeSameFlow(head, first.IsIpv6, first.L4Offset, packet, ProtocolUdp))
            {
                continue;
            }
            if (!headVerified)
            {
                if (!ChecksumsValid(head, first))
                {
                    break; // corrupt: the kernel sees it alone and drops it
                }
                headVerified = true;
            }
            if (!TryParseHeaders(packet, out Datagram next)
                || next.PayloadLength > first.PayloadLength
                || total + next.PayloadLength > limit
                || !MergeableIpHeader.SameIpHeader(head, first.IsIpv6, packet, count)
                || !ChecksumsValid(packet, next))
            {
                break;
            }
            taken[i] = true;
            members[count++] = i;
            total += next.PayloadLength;
            if (next.PayloadLength < first.PayloadLength)
            {
                break; // a short datagram ends the super-packet
            }
        }
        return count;
    }

    /// <summary>
    /// Writes the virtio_net_hdr and the super-packet of the <paramref name="members"/> (at least 2)
    /// found by <see cref="FindRun"/>, and returns the bytes written.
    /// </summary>
    public static int Build(ReadOnlySpan<PacketBuffer> packets, ReadOnlySpan<int> members, Span<byte> destination)
    {
        ReadOnlySpan<byte> head = packets[members[0]].Data;
        if (members.Length < 2 || !TryParseHeaders(head, out Datagram first))
        {
            throw new ArgumentException("a super-packet needs at least two UDP datagrams found by FindRun", nameof(members));
        }
        Span<byte> packet = destination[VirtioNetHeader.Size..];
        int headerLength = first.L4Offset + UdpHeaderLength;
        int length = MergeableIpHeader.Concatenate(packets, members, headerLength, packet);
        int l4 = first.L4Offset;
        // The UDP length covers the whole super-packet, as after the kernel's own GRO
        // (udp_gro_complete); segmentation gives each datagram its own length and checksum.
        BinaryPrimitives.WriteUInt16BigEndian(packet[(l4 + 4)..], (ushort)(length - l4));
        // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, the kernel adds the rest.
        BinaryPrimitives.WriteUInt16BigEndian(packet[(l4 + UdpChecksumOffset)..],
            MergeableIpHeader.FinishMerged(packet, first.IsIpv6, l4, length, ProtocolUdp));
        new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum,
            GsoType = VirtioNetHeader.GsoUdpL4,
            HdrLen = (ushort)headerLength,
            GsoSize = (ushort)first.PayloadLength,
            CsumStart = (ushort)l4,
            CsumOffset = UdpChecksumOffset,
        }.Write(destination);
        return VirtioNetHeader.Size + length;
    }

    private readonly struct Datagram(bool isIpv6, int l4Offset, int payloadLength)
    {
        public readonly bool IsIpv6 = isIpv6;
        public readonly int L4Offset = l4Offset;
        public readonly int PayloadLength = payloadLength;
    }

    /// <summary>
    /// A UDP datagram with a payload, without IPv4 options, fragments or IPv6 extension headers, its
    /// lengths consistent and a checksum present (not verified here: <see cref="ChecksumsValid"/>).
    /// </summary>
    private static bool TryParseHeaders(ReadOnlySpan<byte> packet, out Datagram datagram)
    {
        datagram = default;
        if (!MergeableIpHeader.TryParse(packet, ProtocolUdp, out bool ipv6, out int l4))
        {
            return false;
        }
        int udpLength = packet.Length - l4;
        if (udpLength <= UdpHeaderLength
            || BinaryPrimitives.ReadUInt16BigEndian(packet[(l4 + 4)..]) != udpLength
            || BinaryPrimitives.ReadUInt16BigEndian(packet[(l4 + UdpChecksumOffset)..]) == 0)
        {
            return false; // no payload, a length that disagrees with the IP header's, or no checksum
        }
        datagram = new Datagram(ipv6, l4, udpLength - UdpHeaderLength);
        return true;
    }

    /// <summary>
    /// The checksums of a datagram <see cref="TryParseHeaders"/> accepted verify: IPv4 header and
    /// UDP (<see cref="MergeableIpHeader.ChecksumsValid"/>).
    /// </summary>
    private static bool ChecksumsValid(ReadOnlySpan<byte> packet, in Datagram datagram) =>
        MergeableIpHeader.ChecksumsValid(packet, datagram.IsIpv6, datagram.L4Offset, ProtocolUdp);
}
