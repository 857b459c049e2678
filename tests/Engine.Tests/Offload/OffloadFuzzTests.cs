using System.Buffers.Binary;
using FsCheck.Xunit;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Offload;
using Firezone.Actors.Engine.Packets;
using static Firezone.Actors.Engine.Tests.Offload.OffloadPackets;

namespace Firezone.Actors.Engine.Tests.Offload;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>
/// Hostile input for the offload code (FsCheck): arbitrary virtio_net_hdr fields and super-packets
/// for <see cref="GsoSegmenter"/> and <see cref="ChecksumOffload"/>, and batches of segments with
/// header fields changed one by one for <see cref="TcpCoalescer"/> and <see cref="UdpCoalescer"/>.
/// What must hold: nothing throws, nothing is read or written outside the packet, every segment is a
/// valid packet with correct checksums, and a merged super-packet, segmented again the way the kernel
/// does, gives back exactly the packets merged into it (so a CE-marked packet never merges with
/// unmarked ones, and no other header bit is lost).
/// </summary>
public class OffloadFuzzTests
{
    private const byte ProtocolTcp = 6, ProtocolUdp = 17;

    // ---- GsoSegmenter and ChecksumOffload on arbitrary headers -----------------------------

    [Property(MaxTest = 3000)]
    public bool Gso_segmenter_on_any_header_and_packet_never_throws_and_writes_valid_segments(
        byte[] body, byte shape, byte flags, byte gsoTypeChoice, ushort gsoSizeRaw, ushort csumStartRaw, ushort csumOffsetRaw, byte mutateAt, byte mutateTo)
    {
        body ??= [];
        byte[] packet = SuperPacket(body, shape, mutateAt, mutateTo, out int wellFormedL4);
        var header = ArbitraryHeader(packet, flags, gsoTypeChoice, gsoSizeRaw, csumStartRaw, csumOffsetRaw, wellFormedL4);
        byte[] before = (byte[])packet.Clone();
        var segmenter = new GsoSegmenter();
        var status = segmenter.Begin(packet, header);
        if (status != OffloadStatus.Ok)
        {
            return !segmenter.HasPending && packet.AsSpan().SequenceEqual(before);
        }
        bool udp = (header.GsoType & ~VirtioNetHeader.GsoEcn) == VirtioNetHeader.GsoUdpL4;
        bool ipv6 = packet[0] >> 4 == 6;
        int l4 = ipv6 ? ((header.Flags & VirtioNetHeader.FlagNeedsCsum) != 0 ? header.CsumStart : 40) : (packet[0] & 0x0F) * 4;
        int headerLength = udp ? l4 + 8 : l4 + (packet[l4 + 12] >> 4) * 4;
        int payload = packet.Length - headerLength;
        int count = segmenter.PendingSegments;
        if (header.GsoSize == 0 || payload <= 0 || count != (payload + header.GsoSize - 1) / header.GsoSize
            || segmenter.MaxSegmentLength != headerLength + header.GsoSize)
        {
            return false;
        }
        var destination = new byte[Math.Min(segmenter.MaxSegmentLength, packet.Length) + 64];
        int payloadSeen = 0;
        for (int index = 0; index < count; index++)
        {
            destination.AsSpan().Fill(0xA5);
            int length = segmenter.NextSegment(packet, destination);
            if (length <= headerLength || length > segmenter.MaxSegmentLength
                || destination.AsSpan(length).IndexOfAnyExcept((byte)0xA5) >= 0)
            {
                return false; // empty, too long, or written beyond its own end
            }
            var segment = destination.AsSpan(0, length);
            if (!segment[headerLength..].SequenceEqual(packet.AsSpan(headerLength + payloadSeen, length - headerLength))
                || !SegmentHeadersValid(segment, packet, header, ipv6, udp, l4, headerLength, index, count))
            {
                return false;
            }
            payloadSeen += length - headerLength;
        }
        return payloadSeen == payload && segmenter.NextSegment(packet, destination) == 0 && !segmenter.HasPending
            && packet.AsSpan().SequenceEqual(before);
    }

    [Property(MaxTest = 3000)]
    public bool Checksum_offload_on_any_header_never_throws_and_writes_only_the_checksum_field(
        byte[] body, byte shape, byte flags, ushort csumStartRaw, ushort csumOffsetRaw, byte mutateAt, byte mutateTo)
    {
        body ??= [];
        byte[] packet = SuperPacket(body, shape, mutateAt, mutateTo, out int wellFormedL4);
        var header = ArbitraryHeader(packet, flags, 0, 0, csumStartRaw, csumOffsetRaw, wellFormedL4);
        byte[] before = (byte[])packet.Clone();
        var status = ChecksumOffload.Complete(packet, header);
        int at = header.CsumStart + header.CsumOffset;
        bool needs = (header.Flags & VirtioNetHeader.FlagNeedsCsum) != 0;
        if (status != OffloadStatus.Ok || !needs)
        {
            return packet.AsSpan().SequenceEqual(before) && (status == OffloadStatus.Ok) == (!needs || at + 2 <= packet.Length);
        }
        for (int i = 0; i < packet.Length; i++)
        {
            if (i != at && i != at + 1 && packet[i] != before[i])
            {
                return false;
            }
        }
        // The field held the pseudo-header sum (a partial checksum) in a well-formed packet: now it is complete.
        bool partialWellFormed = wellFormedL4 > 0 && (shape & 0x30) != 0x30 && header.CsumStart == wellFormedL4
            && header.CsumOffset == (IsUdpShape(shape) ? 6 : 16);
        return !partialWellFormed || TransportChecksumValid(packet, packet[0] >> 4 == 6, wellFormedL4, IsUdpShape(shape) ? ProtocolUdp : ProtocolTcp);
    }

    /// <summary>
    /// A super-packet with one segment's worth of payload (gso_size at least the payload) comes out of
    /// the segmenter as exactly the packet the NEEDS_CSUM completion makes of it: the read path's two
    /// ways (GSO and not) agree on the checksum whatever pseudo-header sum the stack left in the field
    /// (a routing header or source route makes it another than the IP header's addresses give).
    /// </summary>
    [Property(MaxTest = 1000)]
    public bool A_super_packet_of_one_segment_comes_out_as_checksum_completion_makes_it(byte[] body, byte shape, ushort partial, ushort gsoSizeRaw)
    {
        body ??= [];
        shape = (byte)((shape | 1) & ~0x30); // well-formed, no header byte overwritten
        byte[] packet = SuperPacket(body, shape, 0, 0, out int l4);
        bool udp = IsUdpShape(shape);
        bool ipv6 = packet[0] >> 4 == 6;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(l4 + (udp ? 6 : 16)), partial);
        int headerLength = udp ? l4 + 8 : l4 + (packet[l4 + 12] >> 4) * 4;
        int payload = packet.Length - headerLength;
        if (payload <= 0)
        {
            return true;
        }
        var header = new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum,
            GsoType = udp ? VirtioNetHeader.GsoUdpL4 : ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4,
            HdrLen = (ushort)headerLength,
            GsoSize = (ushort)Math.Min(65535, payload + gsoSizeRaw % 2000),
            CsumStart = (ushort)l4,
            CsumOffset = (ushort)(udp ? 6 : 16),
        };
        byte[] completed = (byte[])packet.Clone();
        var segmenter = new GsoSegmenter();
        if (ChecksumOffload.Complete(completed, header) != OffloadStatus.Ok
            || segmenter.Begin(packet, header) != OffloadStatus.Ok || segmenter.PendingSegments != 1)
        {
            return false;
        }
        var segment = new byte[packet.Length];
        return segmenter.NextSegment(packet, segment) == packet.Length && segment.AsSpan().SequenceEqual(completed);
    }

    // ---- the coalescers: merged, then segmented again, the packets come back ---------------

    [Property(MaxTest = 600)]
    public bool Tcp_coalescing_then_segmenting_gives_back_every_merged_packet(
        bool ipv6, ushort payloadRaw, ushort mssRaw, byte ecnRaw, bool dontFragment, byte optionWords, ushort id, byte[] mutations) =>
        CoalesceRoundTrip(ipv6, udp: false, payloadRaw, mssRaw, ecnRaw, dontFragment, optionWords, id, mutations ?? []);

    [Property(MaxTest = 600)]
    public bool Udp_coalescing_then_segmenting_gives_back_every_merged_packet(
        bool ipv6, ushort payloadRaw, ushort mssRaw, byte ecnRaw, bool dontFragment, ushort id, byte[] mutations) =>
        CoalesceRoundTrip(ipv6, udp: true, payloadRaw, mssRaw, ecnRaw, dontFragment, 0, id, mutations ?? []);

    /// <summary>
    /// Segments a valid super-packet, changes header fields of some segments (fixing their checksums,
    /// or not), then coalesces the batch the way the TUN writer does (every untaken packet starts a
    /// run) and segments each super-packet again as the kernel would: every run must come back byte
    /// for byte, apart from the IPv4 identification of DF packets (the kernel re-numbers those too,
    /// inet_gro_receive treats them as atomic).
    /// </summary>
    private static bool CoalesceRoundTrip(bool ipv6, bool udp, ushort payloadRaw, ushort mssRaw, byte ecnRaw, bool dontFragment, byte optionWords,
        ushort id, byte[] mutations)
    {
        int mss = 1 + mssRaw % 1400;
        int payload = 1 + payloadRaw % Math.Min(20000, mss * 40);
        var ecn = (Ecn)(ecnRaw & 3);
        int l4 = ipv6 ? 40 : 20;
        byte protocol = udp ? ProtocolUdp : ProtocolTcp;
        // As the kernel hands it over: the pseudo-header sum in the checksum field (NEEDS_CSUM).
        byte[] original = AsPartial(udp
            ? Udp(ipv6, payload, ecn, id, dontFragment)
            : Tcp(ipv6, 0xFFFFFF00, payload, flags: Ack, ecn: ecn, id: id, dontFragment: dontFragment, optionLength: 4 * (optionWords % 11)),
            ipv6, protocol);
        var header = new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum,
            GsoType = udp ? VirtioNetHeader.GsoUdpL4 : ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4,
            GsoSize = (ushort)mss,
            CsumStart = (ushort)l4,
            CsumOffset = (ushort)(udp ? 6 : 16),
        };
        var segmenter = new GsoSegmenter();
        if (segmenter.Begin(original, header) != OffloadStatus.Ok)
        {
            return false;
        }
        var segments = new List<byte[]>();
        var scratch = new byte[segmenter.MaxSegmentLength];
        while (segmenter.HasPending)
        {
            int length = segmenter.NextSegment(original, scratch);
            segments.Add(scratch.AsSpan(0, length).ToArray());
        }
        for (int m = 0; m + 2 < mutations.Length; m += 3)
        {
            Mutate(segments[mutations[m] % segments.Count], ipv6, udp, mutations[m + 1], mutations[m + 2]);
        }

        var pool = new PacketBufferPool(preallocate: 0, maxBuffers: 1024);
        var buffers = ToBuffers(pool, [.. segments]);
        try
        {
            var taken = new bool[buffers.Length];
            var members = new int[buffers.Length];
            var merged = new byte[70000];
            for (int start = 0; start < buffers.Length; start++)
            {
                if (taken[start])
                {
                    continue;
                }
                int count = udp
                    ? UdpCoalescer.FindRun(buffers, start, taken, members, 65535)
                    : TcpCoalescer.FindRun(buffers, start, taken, members, 65535);
                if (count < 2)
                {
                    continue;
                }
                var run = members.AsSpan(0, count);
                int written = udp ? UdpCoalescer.Build(buffers, run, merged) : TcpCoalescer.Build(buffers, run, merged);
                var mergedHeader = VirtioNetHeader.Read(merged);
                byte[] superPacket = merged.AsSpan(VirtioNetHeader.Size, written - VirtioNetHeader.Size).ToArray();
                var again = new GsoSegmenter();
                if (again.Begin(superPacket, mergedHeader) != OffloadStatus.Ok || again.PendingSegments != count)
                {
                    return false;
                }
                Ecn headEcn = EcnOf(buffers[run[0]].Data);
                var segment = new byte[again.MaxSegmentLength];
                for (int k = 0; k < count; k++)
                {
                    int length = again.NextSegment(superPacket, segment);
                    ReadOnlySpan<byte> member = buffers[run[k]].Data;
                    if (EcnOf(member) != headEcn || !SameAfterResegmenting(member, segment.AsSpan(0, length), ipv6, udp))
                    {
                        return false;
                    }
                }
            }
        }
        finally
        {
            ReturnAll(buffers);
        }
        return pool.Outstanding == 0;
    }

    private static int HeaderLength(byte[] p, bool ipv6, bool udp)
    {
        int l4 = ipv6 ? 40 : 20;
        return udp ? l4 + 8 : l4 + (p[l4 + 12] >> 4) * 4;
    }

    /// <summary>
    /// Equal, except the IPv4 identification (and so the header checksum) of a DF packet, and a TCP
    /// urgent pointer without URG (RFC 9293 section 3.1: only read with URG set; tcp_gro_receive does
    /// not compare it either, and URG segments are never merged).
    /// </summary>
    private static bool SameAfterResegmenting(ReadOnlySpan<byte> member, ReadOnlySpan<byte> segment, bool ipv6, bool udp)
    {
        if (member.Length != segment.Length)
        {
            return false;
        }
        int l4 = ipv6 ? 40 : 20;
        if (!udp && (member[l4 + 13] & Urg) == 0 && !member.Slice(l4 + 18, 2).SequenceEqual(segment.Slice(l4 + 18, 2)))
        {
            byte[] withUrgentPointer = segment.ToArray();
            member.Slice(l4 + 18, 2).CopyTo(withUrgentPointer.AsSpan(l4 + 18));
            withUrgentPointer[l4 + 16] = member[l4 + 16];
            withUrgentPointer[l4 + 17] = member[l4 + 17];
            return SameAfterResegmenting(member, withUrgentPointer, ipv6, udp)
                && TransportChecksumValid(segment, ipv6, l4, ProtocolTcp);
        }
        if (ipv6 || (member[6] & 0x40) == 0)
        {
            return member.SequenceEqual(segment);
        }
        return member[..4].SequenceEqual(segment[..4]) && member[6..10].SequenceEqual(segment[6..10])
            && member[12..].SequenceEqual(segment[12..]) && PlainChecksum(segment[..20]) == 0;
    }

    private static Ecn EcnOf(ReadOnlySpan<byte> packet) =>
        packet[0] >> 4 == 6 ? (Ecn)((packet[1] >> 4) & 3) : (Ecn)(packet[1] & 3);

    /// <summary>
    /// Changes one header field of a segment. Field numbers below 20 then fix the checksums (a valid
    /// packet that differs from its neighbours); the others leave a corrupt checksum.
    /// </summary>
    private static void Mutate(byte[] p, bool ipv6, bool udp, byte fieldChoice, byte value)
    {
        int l4 = ipv6 ? 40 : 20;
        int field = fieldChoice % 24;
        switch (field)
        {
            case 0: // DSCP and ECN
                if (ipv6)
                {
                    p[1] = (byte)((p[1] & 0x0F) | (value << 4));
                }
                else
                {
                    p[1] = value;
                }
                break;
            case 1: // ECN only: the CE-versus-not-CE case
                if (ipv6)
                {
                    p[1] = (byte)((p[1] & 0xCF) | ((value & 3) << 4));
                }
                else
                {
                    p[1] = (byte)((p[1] & 0xFC) | (value & 3));
                }
                break;
            case 2: // IPv4 flags (reserved, DF, MF); IPv6 traffic class high nibble
                if (ipv6)
                {
                    p[0] = (byte)(0x60 | (value & 0x0F));
                }
                else
                {
                    p[6] = (byte)((p[6] & 0x1F) | (value & 0xE0));
                }
                break;
            case 3: // TTL / hop limit
                p[ipv6 ? 7 : 8] = value;
                break;
            case 4: // IPv4 identification; IPv6 flow label
                p[ipv6 ? 3 : 5] ^= value;
                break;
            case 5: // source port
                p[l4 + 1] ^= value;
                break;
            case 6 when !udp: // reserved bits and AE (AccECN) next to the data offset
                p[l4 + 12] = (byte)((p[l4 + 12] & 0xF0) | (value & 0x0F));
                break;
            case 7 when !udp: // flags
                p[l4 + 13] = value;
                break;
            case 8 when !udp: // window
                p[l4 + 14 + (value & 1)] ^= (byte)(value | 1);
                break;
            case 9 when !udp: // acknowledgment number
                p[l4 + 11] ^= value;
                break;
            case 10 when !udp: // sequence number
                p[l4 + 7] ^= value;
                break;
            case 11 when !udp && (p[l4 + 12] >> 4) > 5: // an option byte
                p[l4 + 20 + value % ((p[l4 + 12] >> 4) * 4 - 20)] ^= (byte)(value | 1);
                break;
            case 12: // a payload byte
                p[p.Length - 1 - value % Math.Min(4, p.Length - HeaderLength(p, ipv6, udp))] ^= (byte)(value | 1);
                break;
            case 13 when !udp: // the urgent pointer, meaningless without URG
                p[l4 + 18 + (value & 1)] ^= (byte)(value | 1);
                break;
            case >= 20: // corrupt: no checksum fix-up
                p[^1] ^= (byte)(value | 1);
                return;
            default:
                return;
        }
        if (!ipv6)
        {
            p[10] = 0;
            p[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Ipv4Checksum.Compute(p.AsSpan(0, 20)));
        }
        FillChecksum(p, ipv6, udp ? ProtocolUdp : ProtocolTcp);
    }

    // ---- regressions: the smallest cases the properties above found ------------------------

    [Fact]
    public void A_tcp_segment_whose_ae_bit_differs_from_the_heads_is_not_merged()
    {
        // Shrunk from Tcp_coalescing_then_segmenting_gives_back_every_merged_packet: two one-byte
        // segments, the head with AE (AccECN's third ACE bit) set; merged, the second came back with it.
        var pool = new PacketBufferPool(preallocate: 0);
        byte[] head = Tcp(false, 1000, 1);
        byte[] next = Tcp(false, 1001, 1);
        Assert.Equal([0, 1], MembersOf(TcpCoalescer.FindRun, pool, [head, next]));
        head[20 + 12] |= 0x01;
        FillChecksum(head, false, ProtocolTcp);
        Assert.Equal([0], MembersOf(TcpCoalescer.FindRun, pool, [head, next]));
        Assert.Equal([0], MembersOf(TcpCoalescer.FindRun, pool, [next, head]));
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void A_tcp_segment_with_another_window_is_not_merged()
    {
        // Shrunk likewise: the head's window one more than the second segment's; merged, the
        // second segment's window update was lost (tcp_gro_receive compares the window too).
        var pool = new PacketBufferPool(preallocate: 0);
        byte[] head = Tcp(false, 1000, 1, window: 513);
        byte[] next = Tcp(false, 1001, 1, window: 512);
        Assert.Equal([0], MembersOf(TcpCoalescer.FindRun, pool, [head, next]));
        Assert.Equal([0, 1], MembersOf(TcpCoalescer.FindRun, pool, [next, Tcp(false, 1002, 1, window: 512)]));
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void An_ipv4_packet_with_the_reserved_flag_is_not_merged()
    {
        // Shrunk from Udp_coalescing_then_segmenting_gives_back_every_merged_packet: two one-byte
        // datagrams, the head with the reserved IPv4 flag (RFC 791 section 3.1) set; merged, the
        // second came back with it. inet_gro_receive refuses any flag but DF.
        var pool = new PacketBufferPool(preallocate: 0);
        byte[] head = WithReservedFlag(Udp(false, 1, payloadStart: 0));
        byte[] next = Udp(false, 1, payloadStart: 1);
        Assert.Equal([0], MembersOf(UdpCoalescer.FindRun, pool, [head, next]));
        Assert.Equal([0], MembersOf(UdpCoalescer.FindRun, pool, [Udp(false, 1, payloadStart: 0), WithReservedFlag(next)]));
        Assert.Equal([0, 1], MembersOf(UdpCoalescer.FindRun, pool, [Udp(false, 1, payloadStart: 0), next]));
        byte[] tcpHead = WithReservedFlag(Tcp(false, 1000, 1));
        Assert.Equal([0], MembersOf(TcpCoalescer.FindRun, pool, [tcpHead, Tcp(false, 1001, 1)]));
        Assert.Equal(0, pool.Outstanding);
    }

    private static byte[] WithReservedFlag(byte[] original)
    {
        byte[] ipv4 = (byte[])original.Clone();
        ipv4[6] |= 0x80;
        ipv4[10] = 0;
        ipv4[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(ipv4.AsSpan(10), PlainChecksum(ipv4.AsSpan(0, 20)));
        return ipv4;
    }

    // ---- building arbitrary inputs ----------------------------------------------------------

    private static bool IsUdpShape(byte shape) => (shape & 2) != 0;

    /// <summary>
    /// Shape bits: 0 (clear) random bytes, else a valid super-packet: bit 1 UDP, bit 2 IPv6, bit 3
    /// IPv6 with a hop-by-hop extension header, bits 4-5 both set: one header byte overwritten. The transport
    /// header's offset of a well-formed packet goes to <paramref name="wellFormedL4"/> (0 for random bytes).
    /// </summary>
    private static byte[] SuperPacket(byte[] body, byte shape, byte mutateAt, byte mutateTo, out int wellFormedL4)
    {
        wellFormedL4 = 0;
        if ((shape & 1) == 0)
        {
            return (byte[])body.Clone();
        }
        bool udp = IsUdpShape(shape);
        bool ipv6 = (shape & 4) != 0;
        bool extension = ipv6 && (shape & 8) != 0;
        int payload = (1 + body.Length * 29) % 3000;
        byte[] packet = udp
            ? Udp(ipv6, payload, (Ecn)(shape >> 6))
            : Tcp(ipv6, 0x10000 * (uint)body.Length, payload, flags: (byte)(Ack | (body.Length % 3 == 0 ? Psh | Fin : 0)), ecn: (Ecn)(shape >> 6),
                optionLength: 4 * (body.Length % 11));
        for (int i = 0; i < Math.Min(body.Length, payload); i++)
        {
            packet[packet.Length - payload + i] = body[i];
        }
        wellFormedL4 = ipv6 ? 40 : 20;
        if (extension)
        {
            // A hop-by-hop options header (RFC 8200 section 4.3) of 8 bytes: PadN only.
            var withExtension = new byte[packet.Length + 8];
            packet.AsSpan(0, 40).CopyTo(withExtension);
            packet.AsSpan(40).CopyTo(withExtension.AsSpan(48));
            withExtension[40] = packet[6];
            withExtension[41] = 0;
            withExtension[42] = 1; // PadN
            withExtension[43] = 4;
            withExtension[6] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(withExtension.AsSpan(4), (ushort)(withExtension.Length - 40));
            packet = withExtension;
            wellFormedL4 = 48;
        }
        // Partial checksum, as the kernel hands it over: the pseudo-header sum in the field.
        WritePartialChecksum(packet, ipv6, wellFormedL4, udp ? ProtocolUdp : ProtocolTcp);
        if ((shape & 0x30) == 0x30 && packet.Length > 0)
        {
            packet[mutateAt % Math.Min(packet.Length, wellFormedL4 + 40)] = mutateTo;
        }
        return packet;
    }

    /// <summary>A header whose fields are often right for the packet and sometimes anything at all.</summary>
    private static VirtioNetHeader ArbitraryHeader(byte[] packet, byte flags, byte gsoTypeChoice, ushort gsoSizeRaw, ushort csumStartRaw,
        ushort csumOffsetRaw, int wellFormedL4)
    {
        byte[] gsoTypes =
        [
            VirtioNetHeader.GsoNone, VirtioNetHeader.GsoTcpV4, VirtioNetHeader.GsoUdp, VirtioNetHeader.GsoTcpV6, VirtioNetHeader.GsoUdpL4,
            VirtioNetHeader.GsoTcpV4 | VirtioNetHeader.GsoEcn, VirtioNetHeader.GsoTcpV6 | VirtioNetHeader.GsoEcn,
        ];
        byte gsoType = gsoTypeChoice % 8 < gsoTypes.Length ? gsoTypes[gsoTypeChoice % 8] : gsoTypeChoice;
        if ((gsoTypeChoice & 0x80) != 0 && packet.Length > 0)
        {
            // Often the type that matches the packet, so the segmenter gets past its first checks.
            bool isV6 = packet[0] >> 4 == 6;
            bool isUdp = wellFormedL4 > 0 && ((isV6 ? packet[6] : packet[9]) == ProtocolUdp || (isV6 && packet[6] == 0 && packet.Length > 40 && packet[40] == ProtocolUdp));
            gsoType = isUdp ? VirtioNetHeader.GsoUdpL4 : isV6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4;
        }
        ushort gsoSize = (gsoSizeRaw & 3) switch
        {
            0 => 0,
            1 => (ushort)(1 + gsoSizeRaw % 64),
            2 => (ushort)(1 + gsoSizeRaw % 1500),
            _ => gsoSizeRaw, // often larger than the payload
        };
        ushort csumStart = (csumStartRaw & 3) switch
        {
            0 or 1 when wellFormedL4 > 0 => (ushort)wellFormedL4,
            2 => (ushort)(csumStartRaw % Math.Max(1, packet.Length + 8)),
            _ => csumStartRaw,
        };
        bool udp = gsoType == VirtioNetHeader.GsoUdpL4;
        ushort csumOffset = (csumOffsetRaw & 3) switch
        {
            0 or 1 => (ushort)(udp ? 6 : 16),
            2 => (ushort)(csumOffsetRaw % 64),
            _ => csumOffsetRaw,
        };
        return new VirtioNetHeader
        {
            Flags = (byte)(flags | ((flags & 0x80) != 0 ? VirtioNetHeader.FlagNeedsCsum : 0)),
            GsoType = gsoType,
            HdrLen = (ushort)(flags * 3),
            GsoSize = gsoSize,
            CsumStart = csumStart,
            CsumOffset = csumOffset,
        };
    }

    // ---- an independent check of one segment -------------------------------------------------

    /// <summary>
    /// The IP and transport headers of segment <paramref name="index"/> of <paramref name="count"/>:
    /// lengths and checksums correct, sequence number advanced, FIN/PSH only on the last and CWR only
    /// on the first, and every other header byte as in the super-packet. The transport checksum as the
    /// kernel's tcp_gso_segment / __udp_gso_segment make it: with NEEDS_CSUM (CHECKSUM_PARTIAL) from the
    /// pseudo-header sum in the super-packet's field, adjusted from its length to the segment's; without,
    /// from the IP header's addresses.
    /// </summary>
    private static bool SegmentHeadersValid(ReadOnlySpan<byte> segment, byte[] packet, VirtioNetHeader header, bool ipv6, bool udp, int l4,
        int headerLength, int index, int count)
    {
        int gsoSize = header.GsoSize;
        int length = segment.Length;
        var expected = packet.AsSpan(0, headerLength).ToArray();
        if (ipv6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(expected.AsSpan(4), (ushort)(length - 40));
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(expected.AsSpan(2), (ushort)length);
            BinaryPrimitives.WriteUInt16BigEndian(expected.AsSpan(4), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(4)) + index));
            expected[10] = segment[10];
            expected[11] = segment[11];
            if (PlainChecksum(segment[..l4]) != 0)
            {
                return false;
            }
        }
        if (udp)
        {
            BinaryPrimitives.WriteUInt16BigEndian(expected.AsSpan(l4 + 4), (ushort)(length - l4));
            expected[l4 + 6] = segment[l4 + 6];
            expected[l4 + 7] = segment[l4 + 7];
        }
        else
        {
            uint sequence = BinaryPrimitives.ReadUInt32BigEndian(packet.AsSpan(l4 + 4));
            BinaryPrimitives.WriteUInt32BigEndian(expected.AsSpan(l4 + 4), unchecked(sequence + (uint)(index * gsoSize)));
            if (index != count - 1)
            {
                expected[l4 + 13] &= unchecked((byte)~(Fin | Psh));
            }
            if (index != 0)
            {
                expected[l4 + 13] &= unchecked((byte)~Cwr);
            }
            expected[l4 + 16] = segment[l4 + 16];
            expected[l4 + 17] = segment[l4 + 17];
        }
        bool checksumValid = (header.Flags & VirtioNetHeader.FlagNeedsCsum) == 0
            ? TransportChecksumValid(segment, ipv6, l4, udp ? ProtocolUdp : ProtocolTcp)
            : PartialChecksumValid(segment, l4, BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(l4 + (udp ? 6 : 16))), packet.Length - l4);
        return segment[..headerLength].SequenceEqual(expected)
            && checksumValid
            && (!udp || BinaryPrimitives.ReadUInt16BigEndian(segment[(l4 + 6)..]) != 0);
    }

    /// <summary>
    /// The transport bytes of <paramref name="segment"/> from <paramref name="l4"/> verify (RFC 1071) with the
    /// pseudo-header sum <paramref name="partial"/> of a super-packet whose transport part was
    /// <paramref name="superLength"/> bytes, its length word replaced by the segment's.
    /// </summary>
    private static bool PartialChecksumValid(ReadOnlySpan<byte> segment, int l4, ushort partial, int superLength)
    {
        int upper = segment.Length - l4;
        uint sum = partial + (0xFFFFu - (ushort)superLength) + (0xFFFFu - (ushort)(superLength >> 16)) + (ushort)upper + (uint)(upper >> 16);
        return PlainChecksum(segment[l4..], sum) == 0;
    }

    /// <summary>RFC 1071 over the pseudo-header (RFC 793 / RFC 8200 section 8.1) and the transport bytes from <paramref name="l4"/>.</summary>
    private static bool TransportChecksumValid(ReadOnlySpan<byte> p, bool ipv6, int l4, byte protocol)
    {
        int addressLength = ipv6 ? 16 : 4;
        int upper = p.Length - l4;
        var buffer = new byte[2 * addressLength + 8 + upper];
        p.Slice(ipv6 ? 8 : 12, 2 * addressLength).CopyTo(buffer);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(2 * addressLength), (uint)upper);
        buffer[2 * addressLength + 7] = protocol;
        p[l4..].CopyTo(buffer.AsSpan(2 * addressLength + 8));
        return PlainChecksum(buffer) == 0;
    }

    /// <summary>RFC 1071 the slow, obvious way (not the engine's vectorised sum): 16-bit big-endian words, end-around carry, complement.</summary>
    private static ushort PlainChecksum(ReadOnlySpan<byte> data, uint sum = 0)
    {
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        for (int i = 0; i < data.Length; i += 2)
        {
            sum += (uint)(data[i] << 8 | (i + 1 < data.Length ? data[i + 1] : 0));
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (ushort)~sum;
    }
}
