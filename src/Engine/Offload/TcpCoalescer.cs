using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Engine.Offload;

/// <summary>
/// Software GRO for packets written to a TUN device with IFF_VNET_HDR: merges a run of consecutive
/// TCP segments of one flow into one super-packet with a virtio_net_hdr (gso_type TCPV4/TCPV6,
/// NEEDS_CSUM), so the kernel takes up to 64 KiB in one write. The rules follow the kernel's
/// tcp_gro_receive/inet_gro_receive: same addresses, ports, ACK number, TCP options, flags and window; no
/// SYN, FIN, RST or URG; contiguous sequence numbers; every segment but the last of the same size;
/// PSH only on the last; and the same IP header apart from length, identification and checksum
/// (<see cref="MergeableIpHeader"/>), so the
/// same ECN codepoint: a CE-marked segment is never merged with unmarked ones (RFC 3168 section 5,
/// RFC 6040 section 4). Nor with other CE-marked ones: the kernel takes a super-packet written to the
/// TUN device as one packet (virtio_net_hdr carries no segment count, so gso_segs stays 0), and an
/// AccECN receiver on this host counts CE packets per packet it sees (RFC 9768; Linux
/// tcp_ecn_received_counters counts max(1, gso_segs)): eight merged CE segments would count as one
/// mark and under-report the congestion to the sender. CE is rare, so writing it alone costs little.
/// (UDP runs may merge CE: the kernel splits them into datagrams, each with the header, or hands a
/// UDP_GRO socket the segment count.) Every merged segment must carry a valid TCP checksum, because the kernel
/// trusts the super-packet's (CHECKSUM_PARTIAL), as wireguard-go's tcpGRO checks too, and a valid
/// IPv4 header checksum, because the super-packet gets a fresh one (inet_gro_receive checks it too).
///
/// Within one batch, as wireguard-go does: packets of one flow are never reordered; packets of
/// different flows may be (a super-packet goes out where its first segment was).
/// </summary>
public static class TcpCoalescer
{
    private const byte TcpFin = 0x01, TcpSyn = 0x02, TcpRst = 0x04, TcpPsh = 0x08, TcpAck = 0x10, TcpUrg = 0x20, TcpCwr = 0x80;
    private const byte ProtocolTcp = 6;

    /// <summary>csum_offset of the TCP checksum field (RFC 793 section 3.1).</summary>
    public const int TcpChecksumOffset = 16;

    /// <summary>
    /// Collects the packets that form one super-packet with the head at <paramref name="start"/>:
    /// later untaken packets of the same TCP connection, in batch order, while each one extends the
    /// previous. Packets of other flows are skipped (left for later), so flows may be reordered
    /// against each other but never within themselves: the scan stops at the first packet of this
    /// connection that cannot be appended. Marks the members in <paramref name="taken"/> and writes
    /// their indices to <paramref name="members"/>; returns how many (1 if the head merges with
    /// nothing). The super-packet stays within <paramref name="maxLength"/> bytes (without the virtio_net_hdr).
    /// </summary>
    public static int FindRun(ReadOnlySpan<PacketBuffer> packets, int start, Span<bool> taken, Span<int> members, int maxLength)
    {
        taken[start] = true;
        members[0] = start;
        ReadOnlySpan<byte> head = packets[start].Data;
        if (start + 1 >= packets.Length || members.Length < 2
            || !TryParse(head, out Segment first) || (first.Flags & (TcpPsh | TcpCwr)) != 0
            || MergeableIpHeader.IsCe(head, first.IsIpv6))
        {
            return 1;
        }
        // The super-packet's IP length field is 16 bits (IPv4 total length, IPv6 payload length).
        int limit = Math.Min(maxLength, first.IsIpv6 ? 65535 + 40 : 65535);
        int total = head.Length;
        uint nextSequence = unchecked(first.Sequence + (uint)first.PayloadLength);
        int count = 1;
        for (int i = start + 1; i < packets.Length && count < members.Length; i++)
        {
            if (taken[i])
            {
                continue;
            }
            ReadOnlySpan<byte> packet = packets[i].Data;
            if (!MergeableIpHeader.MaybeSameFlow(head, first.IsIpv6, first.L4Offset, packet, ProtocolTcp))
            {
                continue;
            }
            if (!TryParse(packet, out Segment next)
                || next.Sequence != nextSequence
                || next.PayloadLength > first.PayloadLength
                || total + next.PayloadLength > limit
                || (next.Flags & ~TcpPsh) != first.Flags
                || !SameFlow(head, first, packet, next, count))
            {
                break;
            }
            taken[i] = true;
            members[count++] = i;
            total += next.PayloadLength;
            nextSequence = unchecked(nextSequence + (uint)next.PayloadLength);
            if (next.PayloadLength < first.PayloadLength || (next.Flags & TcpPsh) != 0)
            {
                break; // a short or pushed segment ends the super-packet
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
        if (members.Length < 2 || !TryParse(head, out Segment first))
        {
            throw new ArgumentException("a super-packet needs at least two TCP segments found by FindRun", nameof(members));
        }
        Span<byte> packet = destination[VirtioNetHeader.Size..];
        int length = MergeableIpHeader.Concatenate(packets, members, first.HeaderLength, packet);
        byte lastFlags = packets[members[^1]].Data[first.L4Offset + 13];
        int l4 = first.L4Offset;
        packet[l4 + 13] = (byte)(first.Flags | (lastFlags & TcpPsh));
        // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, the kernel adds the rest.
        BinaryPrimitives.WriteUInt16BigEndian(packet[(l4 + TcpChecksumOffset)..],
            MergeableIpHeader.FinishMerged(packet, first.IsIpv6, l4, length, ProtocolTcp));
        new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum,
            GsoType = first.IsIpv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4,
            HdrLen = (ushort)first.HeaderLength,
            GsoSize = (ushort)first.PayloadLength,
            CsumStart = (ushort)l4,
            CsumOffset = TcpChecksumOffset,
        }.Write(destination);
        return VirtioNetHeader.Size + length;
    }

    private static bool SameFlow(ReadOnlySpan<byte> head, in Segment first, ReadOnlySpan<byte> packet, in Segment next, int index)
    {
        if (first.IsIpv6 != next.IsIpv6 || first.HeaderLength != next.HeaderLength)
        {
            return false;
        }
        int l4 = first.L4Offset;
        if (!MergeableIpHeader.SameIpHeader(head, first.IsIpv6, packet, index))
        {
            return false;
        }
        // Ports, ACK number, the options (timestamps), and the rest of the flag word: segmentation
        // gives every segment the head's, so a segment that differs there would lose its own, as
        // tcp_gro_receive knows (it compares the whole word, window included, but FIN and PSH).
        // That word holds the window (an update in a later segment would vanish) and, next to the
        // data offset, the reserved bits and AE, a bit of AccECN's ACE counter of CE marks (RFC 9768).
        return head.Slice(l4, 4).SequenceEqual(packet.Slice(l4, 4))
            && head.Slice(l4 + 8, 5).SequenceEqual(packet.Slice(l4 + 8, 5))
            && head.Slice(l4 + 14, 2).SequenceEqual(packet.Slice(l4 + 14, 2))
            && head.Slice(l4 + 20, first.HeaderLength - l4 - 20).SequenceEqual(packet.Slice(l4 + 20, first.HeaderLength - l4 - 20));
    }

    private readonly struct Segment
    {
        public readonly bool IsIpv6;
        public readonly int L4Offset;
        public readonly int HeaderLength;
        public readonly int PayloadLength;
        public readonly uint Sequence;
        public readonly byte Flags;

        public Segment(bool isIpv6, int l4Offset, int headerLength, int payloadLength, uint sequence, byte flags)
        {
            IsIpv6 = isIpv6;
            L4Offset = l4Offset;
            HeaderLength = headerLength;
            PayloadLength = payloadLength;
            Sequence = sequence;
            Flags = flags;
        }
    }

    /// <summary>A data-carrying TCP segment without IPv4 options, fragments or IPv6 extension headers, checksums valid.</summary>
    private static bool TryParse(ReadOnlySpan<byte> packet, out Segment segment)
    {
        segment = default;
        if (!MergeableIpHeader.TryParse(packet, ProtocolTcp, out bool ipv6, out int l4) || packet.Length < l4 + 20)
        {
            return false;
        }
        int dataOffset = (packet[l4 + 12] >> 4) * 4;
        int headerLength = l4 + dataOffset;
        if (dataOffset < 20 || headerLength >= packet.Length)
        {
            return false; // bad offset, or no payload (pure ACKs are not merged)
        }
        byte flags = packet[l4 + 13];
        if ((flags & (TcpSyn | TcpFin | TcpRst | TcpUrg)) != 0 || (flags & TcpAck) == 0)
        {
            return false;
        }
        if (!MergeableIpHeader.ChecksumsValid(packet, ipv6, l4, ProtocolTcp))
        {
            return false; // corrupt: let the kernel see it alone and drop it
        }
        segment = new Segment(ipv6, l4, headerLength, packet.Length - headerLength,
            BinaryPrimitives.ReadUInt32BigEndian(packet[(l4 + 4)..]), flags);
        return true;
    }
}
