using System.Buffers.Binary;
using Firezone.Actors.Engine.Offload;
using Firezone.Actors.Engine.Packets;
using static Firezone.Actors.Engine.Tests.Offload.OffloadPackets;

namespace Firezone.Actors.Engine.Tests.Offload;

using Ecn = Firezone.Actors.Engine.Ecn;

public class GsoSegmenterTests
{
    private static VirtioNetHeader TsoHeader(bool ipv6, int headerLength, int mss, byte gsoType = 0) => new()
    {
        Flags = VirtioNetHeader.FlagNeedsCsum,
        GsoType = gsoType != 0 ? gsoType : ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4,
        HdrLen = (ushort)headerLength,
        GsoSize = (ushort)mss,
        CsumStart = (ushort)(ipv6 ? 40 : 20),
        CsumOffset = 16,
    };

    private static List<byte[]> SegmentAll(GsoSegmenter segmenter, byte[] super)
    {
        var segments = new List<byte[]>();
        var destination = new byte[2048];
        int length;
        while ((length = segmenter.NextSegment(super, destination)) > 0)
        {
            segments.Add(destination.AsSpan(0, length).ToArray());
        }
        return segments;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Tcp_super_packet_splits_into_valid_segments_with_contiguous_sequence_numbers(bool ipv6)
    {
        const int mss = 1000;
        const uint isn = 0xFFFFFE00; // wraps during the split
        byte[] super = AsPartial(Tcp(ipv6, isn, 3 * mss + 123, flags: Ack | Psh | Fin | Cwr | Ece, ecn: Ecn.Ce, id: 65534, dontFragment: true), ipv6, 6);
        int l4 = ipv6 ? 40 : 20;
        var segmenter = new GsoSegmenter();
        Assert.Equal(OffloadStatus.Ok, segmenter.Begin(super, TsoHeader(ipv6, l4 + 32, mss)));
        Assert.Equal(4, segmenter.PendingSegments);
        var segments = SegmentAll(segmenter, super);
        Assert.Equal(4, segments.Count);
        Assert.False(segmenter.HasPending);
        int payloadOffset = l4 + 32;
        for (int i = 0; i < segments.Count; i++)
        {
            byte[] s = segments[i];
            int payload = i < 3 ? mss : 123;
            Assert.Equal(l4 + 32 + payload, s.Length);
            Assert.True(TransportChecksumValid(s), $"segment {i}: TCP checksum");
            if (ipv6)
            {
                Assert.Equal(s.Length - 40, BinaryPrimitives.ReadUInt16BigEndian(s.AsSpan(4)));
                Assert.Equal(super.AsSpan(0, 4).ToArray(), s.AsSpan(0, 4).ToArray()); // traffic class with CE, flow label
            }
            else
            {
                Assert.True(Ipv4HeaderChecksumValid(s), $"segment {i}: IPv4 header checksum");
                Assert.Equal(s.Length, BinaryPrimitives.ReadUInt16BigEndian(s.AsSpan(2)));
                Assert.Equal((ushort)(65534 + i), BinaryPrimitives.ReadUInt16BigEndian(s.AsSpan(4)));
                Assert.Equal(super[1], s[1]); // TOS with CE
            }
            Assert.Equal(Ecn.Ce, (Ecn)((ipv6 ? s[1] >> 4 : s[1]) & 3));
            Assert.Equal(unchecked(isn + (uint)(i * mss)), BinaryPrimitives.ReadUInt32BigEndian(s.AsSpan(l4 + 4)));
            byte flags = s[l4 + 13];
            Assert.Equal(i == 3, (flags & Fin) != 0);
            Assert.Equal(i == 3, (flags & Psh) != 0);
            Assert.Equal(i == 0, (flags & Cwr) != 0);
            Assert.True((flags & (Ack | Ece)) == (Ack | Ece));
            Assert.Equal(super.AsSpan(payloadOffset + i * mss, payload).ToArray(), s.AsSpan(l4 + 32).ToArray());
            Assert.Equal(super.AsSpan(l4 + 20, 12).ToArray(), s.AsSpan(l4 + 20, 12).ToArray()); // options
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Udp_l4_super_packet_splits_into_datagrams_with_their_own_length_and_checksum(bool ipv6)
    {
        const int size = 1200;
        byte[] super = AsPartial(Udp(ipv6, 2 * size + 7, ecn: Ecn.Ect1), ipv6, 17);
        int l4 = ipv6 ? 40 : 20;
        var segmenter = new GsoSegmenter();
        var header = new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum, GsoType = VirtioNetHeader.GsoUdpL4, HdrLen = (ushort)(l4 + 8),
            GsoSize = size, CsumStart = (ushort)l4, CsumOffset = 6,
        };
        Assert.Equal(OffloadStatus.Ok, segmenter.Begin(super, header));
        var segments = SegmentAll(segmenter, super);
        Assert.Equal(3, segments.Count);
        for (int i = 0; i < 3; i++)
        {
            byte[] s = segments[i];
            int payload = i < 2 ? size : 7;
            Assert.Equal(l4 + 8 + payload, s.Length);
            Assert.Equal(8 + payload, BinaryPrimitives.ReadUInt16BigEndian(s.AsSpan(l4 + 4)));
            Assert.True(TransportChecksumValid(s), $"datagram {i}: UDP checksum");
            Assert.Equal(Ecn.Ect1, (Ecn)((ipv6 ? s[1] >> 4 : s[1]) & 3));
            Assert.True(ipv6 || Ipv4HeaderChecksumValid(s));
            Assert.Equal(super.AsSpan(l4 + 8 + i * size, payload).ToArray(), s.AsSpan(l4 + 8).ToArray());
        }
    }

    [Fact]
    public void Segments_can_be_taken_a_few_at_a_time()
    {
        byte[] super = Tcp(false, 1, 5 * 100, flags: Ack);
        var segmenter = new GsoSegmenter();
        Assert.Equal(OffloadStatus.Ok, segmenter.Begin(super, TsoHeader(false, 52, 100)));
        var destination = new byte[200];
        Assert.Equal(152, segmenter.NextSegment(super, destination));
        Assert.Equal(152, segmenter.NextSegment(super, destination));
        Assert.Equal(3, segmenter.PendingSegments);
        Assert.Equal(152, segmenter.NextSegment(super, destination));
        Assert.Equal(201u, BinaryPrimitives.ReadUInt32BigEndian(destination.AsSpan(24)));
        segmenter.NextSegment(super, destination);
        segmenter.NextSegment(super, destination);
        Assert.Equal(0, segmenter.NextSegment(super, destination));
    }

    [Fact]
    public void Ufo_unknown_types_and_inconsistent_headers_are_refused()
    {
        byte[] tcp = Tcp(false, 1, 1000);
        var segmenter = new GsoSegmenter();
        Assert.Equal(OffloadStatus.Unsupported, segmenter.Begin(tcp, TsoHeader(false, 52, 100, VirtioNetHeader.GsoUdp)));
        Assert.Equal(OffloadStatus.Unsupported, segmenter.Begin(tcp, TsoHeader(false, 52, 100, 9)));
        Assert.Equal(OffloadStatus.Malformed, segmenter.Begin(tcp, TsoHeader(false, 52, 0)));
        Assert.Equal(OffloadStatus.Malformed, segmenter.Begin(tcp, TsoHeader(true, 52, 100))); // TCPV6 on an IPv4 packet
        Assert.Equal(OffloadStatus.Malformed, segmenter.Begin(tcp.AsSpan(0, 30), TsoHeader(false, 52, 100)));
        Assert.Equal(OffloadStatus.Malformed, segmenter.Begin(tcp.AsSpan(0, 52), TsoHeader(false, 52, 100))); // no payload
        Assert.False(segmenter.HasPending);
    }

    [Theory]
    [InlineData(false, 6)]
    [InlineData(true, 6)]
    [InlineData(false, 17)]
    [InlineData(true, 17)]
    public void Needs_csum_is_completed_to_the_full_checksum(bool ipv6, byte protocol)
    {
        byte[] full = protocol == 6 ? Tcp(ipv6, 77, 333) : Udp(ipv6, 333);
        byte[] partial = AsPartial(full, ipv6, protocol);
        var header = new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum, CsumStart = (ushort)(ipv6 ? 40 : 20), CsumOffset = (ushort)(protocol == 6 ? 16 : 6),
        };
        Assert.Equal(OffloadStatus.Ok, ChecksumOffload.Complete(partial, header));
        Assert.Equal(full, partial);
        header.CsumOffset = 5000;
        Assert.Equal(OffloadStatus.Malformed, ChecksumOffload.Complete(partial, header));
    }
    /// <summary>
    /// A routing header (RFC 8200 section 8.1) or an IPv4 source route option puts the final
    /// destination, not the IP header's, in the TCP/UDP pseudo-header; the stack leaves that sum
    /// in the checksum field (CHECKSUM_PARTIAL), and the kernel's own segmentation (tcp_gso_segment,
    /// __udp_gso_segment) adjusts it for each segment's length. Found by comparing the segmenter with
    /// such a kernel model: it recomputed the sum from the IP header's destination, so every segment
    /// left with a checksum the final destination drops, while the same packet without GSO
    /// (<see cref="ChecksumOffload"/>) left with a valid one.
    /// </summary>
    [Theory]
    [InlineData(true, 6)]
    [InlineData(true, 17)]
    [InlineData(false, 6)]
    [InlineData(false, 17)]
    public void Segments_are_checksummed_for_the_final_destination_a_routing_header_or_source_route_names(bool ipv6, byte protocol)
    {
        const int size = 500;
        byte[] full = protocol == 6 ? Tcp(ipv6, 4242, 3 * size + 11, flags: Ack | Psh) : Udp(ipv6, 3 * size + 11);
        byte[] super = WithSourceRoute(AsPartial(full, ipv6, protocol), ipv6, out int l4, out byte[] finalDestination);
        var header = new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum,
            GsoType = protocol == 17 ? VirtioNetHeader.GsoUdpL4 : ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4,
            HdrLen = (ushort)(l4 + (protocol == 6 ? 32 : 8)),
            GsoSize = size,
            CsumStart = (ushort)l4,
            CsumOffset = (ushort)(protocol == 6 ? 16 : 6),
        };

        // The same packet without GSO: ChecksumOffload completes the sum the field holds.
        byte[] single = (byte[])super.Clone();
        Assert.Equal(OffloadStatus.Ok, ChecksumOffload.Complete(single, header));
        Assert.True(ChecksumVerifies(single, ipv6, l4, finalDestination, protocol), "GSO_NONE: checksum for the final destination");

        var segmenter = new GsoSegmenter();
        Assert.Equal(OffloadStatus.Ok, segmenter.Begin(super, header));
        var segments = SegmentAll(segmenter, super);
        Assert.Equal(4, segments.Count);
        for (int i = 0; i < segments.Count; i++)
        {
            Assert.True(ChecksumVerifies(segments[i], ipv6, l4, finalDestination, protocol), $"segment {i}: checksum for the final destination");
        }
    }

    /// <summary>
    /// <paramref name="packet"/> (transport header right after a 20- or 40-byte IP header, its pseudo-header
    /// sum already in the checksum field) sent by way of another first hop: IPv6 gets a segment routing
    /// header (RFC 8754) listing the final destination, IPv4 a loose source route option (RFC 791) naming it.
    /// </summary>
    private static byte[] WithSourceRoute(byte[] packet, bool ipv6, out int l4, out byte[] finalDestination)
    {
        byte[] firstHop = ipv6 ? [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99] : [10, 9, 9, 9];
        int ipHeader = ipv6 ? 40 : 20;
        int extra = ipv6 ? 8 + 2 * 16 : 8;
        var routed = new byte[packet.Length + extra];
        packet.AsSpan(0, ipHeader).CopyTo(routed);
        packet.AsSpan(ipHeader).CopyTo(routed.AsSpan(ipHeader + extra));
        Span<byte> route = routed.AsSpan(ipHeader, extra);
        if (ipv6)
        {
            finalDestination = packet.AsSpan(24, 16).ToArray();
            route[0] = packet[6]; // next header
            route[1] = (byte)(extra / 8 - 1);
            route[2] = 4; // segment routing
            route[3] = 1; // segments left: the first hop is segment list[1]
            route[4] = 1; // last entry
            finalDestination.CopyTo(route[8..]);
            firstHop.CopyTo(route[24..]);
            routed[6] = 43;
            BinaryPrimitives.WriteUInt16BigEndian(routed.AsSpan(4), (ushort)(routed.Length - 40));
            firstHop.CopyTo(routed, 24);
        }
        else
        {
            finalDestination = packet.AsSpan(16, 4).ToArray();
            route[0] = 1; // NOP
            route[1] = 0x83; // loose source and record route
            route[2] = 7;
            route[3] = 4;
            finalDestination.CopyTo(route[4..]);
            routed[0] = 0x47;
            BinaryPrimitives.WriteUInt16BigEndian(routed.AsSpan(2), (ushort)routed.Length);
            firstHop.CopyTo(routed, 16);
            routed[10] = 0;
            routed[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(routed.AsSpan(10), Ipv4Checksum.Compute(routed.AsSpan(0, 28)));
        }
        l4 = ipHeader + extra;
        return routed;
    }

    /// <summary>RFC 1071 over the pseudo-header with <paramref name="destination"/> and the transport bytes from <paramref name="l4"/>.</summary>
    private static bool ChecksumVerifies(byte[] p, bool ipv6, int l4, byte[] destination, byte protocol)
    {
        int addressLength = ipv6 ? 16 : 4;
        int upper = p.Length - l4;
        var buffer = new byte[2 * addressLength + 8 + upper];
        p.AsSpan(ipv6 ? 8 : 12, addressLength).CopyTo(buffer);
        destination.CopyTo(buffer, addressLength);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(2 * addressLength), (uint)upper);
        buffer[2 * addressLength + 7] = protocol;
        p.AsSpan(l4).CopyTo(buffer.AsSpan(2 * addressLength + 8));
        return Ipv4Checksum.Compute(buffer) == 0;
    }
}
