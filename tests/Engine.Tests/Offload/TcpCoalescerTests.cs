using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Offload;
using static Firezone.Actors.Engine.Tests.Offload.OffloadPackets;

namespace Firezone.Actors.Engine.Tests.Offload;

using Ecn = Firezone.Actors.Engine.Ecn;

public class TcpCoalescerTests
{
    private const int Mss = 1000;
    private readonly PacketBufferPool _pool = new(preallocate: 16);

    private static byte[][] Flow(bool ipv6, int count, int lastPayload = Mss, Ecn ecn = Ecn.Ect0, uint isn = 1000)
    {
        var packets = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            packets[i] = Tcp(ipv6, isn + (uint)(i * Mss), i == count - 1 ? lastPayload : Mss, ecn: ecn, id: (ushort)(7 + i));
        }
        return packets;
    }

    private static int[] Run(PacketBuffer[] buffers, int start, int maxLength = 65535) => RunOf(TcpCoalescer.FindRun, buffers, start, maxLength);

    private int[] Members(byte[][] packets, int start = 0) => MembersOf(TcpCoalescer.FindRun, _pool, packets, start);

    [Fact]
    public void Interleaved_flows_are_each_merged_but_a_flow_is_never_reordered()
    {
        static byte[] Other(uint sequence, int payload = Mss, byte flags = Ack)
        {
            byte[] p = Tcp(false, sequence, payload, flags: flags);
            p[21] ^= 1; // another source port
            FillChecksum(p, false, 6);
            return p;
        }
        byte[][] interleaved = [Tcp(false, 1000, Mss), Other(1000), Tcp(false, 2000, Mss), Other(2000), Udp(false, 100), Tcp(false, 3000, Mss)];
        Assert.Equal([0, 2, 5], Members(interleaved, 0));
        Assert.Equal([1, 3], Members(interleaved, 1));
        // A pure ACK of the same connection between two segments: the segment after it must not overtake it.
        byte[][] ackBetween = [Tcp(false, 1000, Mss), Tcp(false, 2000, 0), Tcp(false, 2000, Mss)];
        Assert.Equal([0], Members(ackBetween, 0));
        // Another connection's segment that does not continue its own flow is simply skipped.
        byte[][] otherOutOfOrder = [Tcp(false, 1000, Mss), Other(9000, 10, Ack | Fin), Tcp(false, 2000, Mss)];
        Assert.Equal([0, 2], Members(otherOutOfOrder, 0));
        Assert.Equal(0, _pool.Outstanding);
    }

    private int Count(byte[][] packets, int start = 0, int maxLength = 65535) => MembersOf(TcpCoalescer.FindRun, _pool, packets, start, maxLength).Length;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_run_of_one_flow_becomes_one_super_packet_with_a_gso_header(bool ipv6)
    {
        byte[][] packets = Flow(ipv6, 4, lastPayload: 300);
        packets[3] = Tcp(ipv6, 1000 + 3 * Mss, 300, flags: Ack | Psh, id: 10);
        var buffers = ToBuffers(_pool, packets);
        try
        {
            int[] members = Run(buffers, 0);
            Assert.Equal([0, 1, 2, 3], members);
            var destination = new byte[70000];
            int written = TcpCoalescer.Build(buffers, members, destination);
            int l4 = ipv6 ? 40 : 20;
            var header = VirtioNetHeader.Read(destination);
            Assert.Equal(VirtioNetHeader.FlagNeedsCsum, header.Flags);
            Assert.Equal(ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4, header.GsoType);
            Assert.Equal(Mss, header.GsoSize);
            Assert.Equal(l4 + 32, header.HdrLen);
            Assert.Equal(l4, header.CsumStart);
            Assert.Equal(16, header.CsumOffset);

            byte[] super = destination.AsSpan(VirtioNetHeader.Size, written - VirtioNetHeader.Size).ToArray();
            Assert.Equal(OffloadStatus.Ok, ChecksumOffload.Complete(super, header));
            byte[] expected = Tcp(ipv6, 1000, 3 * Mss + 300, flags: Ack | Psh, id: 7);
            Assert.Equal(expected, super);
        }
        finally
        {
            ReturnAll(buffers);
        }
        Assert.Equal(0, _pool.Outstanding);
    }

    [Fact]
    public void A_ce_marked_segment_is_never_merged_with_unmarked_ones()
    {
        byte[][] packets = Flow(false, 5);
        packets[2] = Tcp(false, 1000 + 2 * Mss, Mss, ecn: Ecn.Ce, id: 9);
        Assert.Equal(2, Count(packets, 0));
        Assert.Equal(1, Count(packets, 2)); // the CE segment does not merge with the ECT(0) ones after it
        Assert.Equal(2, Count(packets, 3));
        byte[][] allCe = Flow(false, 5, ecn: Ecn.Ce);
        Assert.Equal(1, Count(allCe)); // nor with other CE-marked ones (see the next test)
        byte[][] ipv6 = Flow(true, 3);
        ipv6[1] = Tcp(true, 1000 + Mss, Mss, ecn: Ecn.Ce);
        Assert.Equal(1, Count(ipv6));
    }

    /// <summary>
    /// A run of CE-marked segments stays a run of packets: the kernel takes a super-packet written to
    /// a TUN device as one packet (virtio_net_hdr has no segment count, gso_segs stays 0), so an
    /// AccECN receiver on this host (RFC 9768, Linux tcp_ecn_received_counters: CE packets counted as
    /// max(1, gso_segs)) would count eight CE marks as one and under-report congestion to its sender.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Ce_marked_segments_are_each_written_alone(bool ipv6)
    {
        byte[][] allCe = Flow(ipv6, 8, ecn: Ecn.Ce);
        for (int i = 0; i < allCe.Length; i++)
        {
            Assert.Equal(1, Count(allCe, i));
        }
        byte[][] mixed = Flow(ipv6, 6);
        mixed[2] = Tcp(ipv6, 1000 + 2 * Mss, Mss, ecn: Ecn.Ce, id: 9);
        mixed[3] = Tcp(ipv6, 1000 + 3 * Mss, Mss, ecn: Ecn.Ce, id: 10);
        Assert.Equal(2, Count(mixed, 0));
        Assert.Equal(1, Count(mixed, 2));
        Assert.Equal(1, Count(mixed, 3));
        Assert.Equal(2, Count(mixed, 4));
        byte[][] ect1 = Flow(ipv6, 5, ecn: Ecn.Ect1);
        Assert.Equal(5, Count(ect1)); // the other codepoints still merge
    }

    [Fact]
    public void Segments_that_the_kernel_must_see_alone_end_or_prevent_a_run()
    {
        Assert.Equal(1, Count([Tcp(false, 1000, Mss, flags: Ack | Psh), Tcp(false, 2000, Mss)])); // PSH on the first
        Assert.Equal(1, Count([Tcp(false, 1000, Mss, flags: Ack | Cwr), Tcp(false, 2000, Mss)])); // CWR
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, Mss, flags: Ack | Fin)]));
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, Mss, flags: Ack | Rst)]));
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, Mss, flags: Ack | Urg)]));
        Assert.Equal(1, Count([Tcp(false, 1000, Mss, flags: Syn | Ack), Tcp(false, 2000, Mss)]));
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, Mss, flags: Ack | Ece)])); // flags differ
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Tcp(false, 2001, Mss)])); // sequence gap
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, Mss + 1)])); // larger than the first
        Assert.Equal(2, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, 10), Tcp(false, 2010, 10)])); // short one ends it
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, Mss, ack: 1)])); // another ACK number
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, Mss, dscp: 10)])); // another DSCP
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, Mss, dontFragment: false, id: 101)])); // DF differs
        Assert.Equal(1, Count([Tcp(false, 1000, Mss, dontFragment: false, id: 1), Tcp(false, 2000, Mss, dontFragment: false, id: 5)]));
        Assert.Equal(2, Count([Tcp(false, 1000, Mss, dontFragment: false, id: 1), Tcp(false, 2000, Mss, dontFragment: false, id: 2)]));
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Tcp(true, 2000, Mss)])); // other family
        Assert.Equal(1, Count([Tcp(false, 1000, 0), Tcp(false, 1000, 0)])); // pure ACKs
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Udp(false, Mss)]));
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, Mss, optionLength: 0)]));
        Assert.Equal(3, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, Mss), Tcp(false, 3000, Mss)]));
        Assert.Equal(2, Count([Tcp(false, 1000, Mss), Tcp(false, 2000, Mss), Tcp(false, 3000, Mss)], maxLength: 2100));

        byte[] corrupt = Tcp(false, 2000, Mss);
        corrupt[^1] ^= 0x55;
        Assert.Equal(1, Count([Tcp(false, 1000, Mss), corrupt]));
        Assert.Equal(0, _pool.Outstanding);
    }

    [Fact]
    public void A_segment_with_a_bad_ipv4_header_checksum_is_never_merged_and_stays_as_it_was()
    {
        // The kernel's inet_gro_receive does not merge a header whose ip_fast_csum fails, so ip_rcv drops
        // that packet alone; merged, it would get the super-packet's fresh, valid header checksum.
        byte[][] packets = Flow(false, 5);
        packets[2][10] ^= 0x55;
        Assert.False(Ipv4HeaderChecksumValid(packets[2]));
        Assert.True(TransportChecksumValid(packets[2]));
        byte[] corrupt = (byte[])packets[2].Clone();
        var buffers = ToBuffers(_pool, packets);
        try
        {
            Assert.Equal([0, 1], Run(buffers, 0)); // the run ends before it; the segments after it do not overtake it
            Assert.Equal([2], Run(buffers, 2)); // written alone
            Assert.Equal([3, 4], Run(buffers, 3));
            // Its neighbours merge into the super-packets they always were, and it stays byte for byte as it came.
            var destination = new byte[70000];
            foreach (var (members, expected) in new[] { (new[] { 0, 1 }, Tcp(false, 1000, 2 * Mss, id: 7)), (new[] { 3, 4 }, Tcp(false, 4000, 2 * Mss, id: 10)) })
            {
                int written = TcpCoalescer.Build(buffers, members, destination);
                byte[] super = destination.AsSpan(VirtioNetHeader.Size, written - VirtioNetHeader.Size).ToArray();
                Assert.Equal(OffloadStatus.Ok, ChecksumOffload.Complete(super, VirtioNetHeader.Read(destination)));
                Assert.Equal(expected, super);
            }
            Assert.Equal(corrupt, buffers[2].Data.ToArray());
        }
        finally
        {
            ReturnAll(buffers);
        }
        Assert.Equal(1, Count([corrupt, Tcp(false, 4000, Mss)])); // as the head
        Assert.Equal(1, Count([Tcp(false, 2000, Mss), corrupt])); // right after the head
        Assert.Equal(0, _pool.Outstanding);
    }

    [Fact]
    public void A_super_packet_stays_within_the_ip_length_limit()
    {
        byte[][] packets = Flow(false, 70);
        int run = Count(packets, 0, int.MaxValue);
        Assert.True(20 + 32 + run * Mss <= 65535);
        Assert.True(20 + 32 + (run + 1) * Mss > 65535);
    }

    public static Arbitrary<(bool Ipv6, int Payload, int Mss, Ecn Ecn, bool Push)> SuperPackets() =>
        (from ipv6 in ArbMap.Default.GeneratorFor<bool>()
         from mss in Gen.Choose(1, 1400)
         from payload in Gen.Choose(1, 60000)
         from ecn in Gen.Elements(Ecn.NotEct, Ecn.Ect0, Ecn.Ect1, Ecn.Ce)
         from push in ArbMap.Default.GeneratorFor<bool>()
         select (ipv6, payload, mss, ecn, push)).ToArbitrary();

    [Property(MaxTest = 200, Arbitrary = [typeof(TcpCoalescerTests)])]
    public bool Segment_then_coalesce_gives_back_the_super_packet((bool Ipv6, int Payload, int Mss, Ecn Ecn, bool Push) c)
    {
        int l4 = c.Ipv6 ? 40 : 20;
        byte flags = c.Push ? (byte)(Ack | Psh) : Ack;
        byte[] original = Tcp(c.Ipv6, 0xFFFF0000, c.Payload, flags: flags, ecn: c.Ecn, id: 0xFFF0);
        var segmenter = new GsoSegmenter();
        var header = new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum, GsoType = c.Ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4,
            HdrLen = (ushort)(l4 + 32), GsoSize = (ushort)c.Mss, CsumStart = (ushort)l4, CsumOffset = 16,
        };
        if (segmenter.Begin(AsPartial(original, c.Ipv6, 6), header) != OffloadStatus.Ok)
        {
            return false;
        }
        var pool = new PacketBufferPool(preallocate: 0, maxBuffers: 100000);
        var segments = new PacketBuffer[segmenter.PendingSegments];
        byte[] partial = AsPartial(original, c.Ipv6, 6);
        for (int i = 0; i < segments.Length; i++)
        {
            segments[i] = pool.Rent();
            int length = segmenter.NextSegment(partial, segments[i].Memory[PacketBuffer.Headroom..]);
            segments[i].SetData(PacketBuffer.Headroom, length);
        }
        bool ok = true;
        var destination = new byte[70000];
        if (segments.Length == 1 || c.Ecn == Ecn.Ce)
        {
            // CE-marked segments are written alone (Ce_marked_segments_are_each_written_alone).
            for (int i = 0; i < segments.Length && ok; i++)
            {
                ok = Run(segments, i).Length == 1;
            }
        }
        if (segments.Length == 1)
        {
            ok = Run(segments, 0).Length == 1 && segments[0].Data.SequenceEqual(original);
        }
        else if (c.Ecn != Ecn.Ce)
        {
            int[] members = Run(segments, 0);
            int run = members.Length;
            int written = TcpCoalescer.Build(segments, members, destination);
            byte[] rebuilt = destination.AsSpan(VirtioNetHeader.Size, written - VirtioNetHeader.Size).ToArray();
            var rebuiltHeader = VirtioNetHeader.Read(destination);
            ok = run == segments.Length
                && rebuiltHeader.GsoSize == c.Mss
                && ChecksumOffload.Complete(rebuilt, rebuiltHeader) == OffloadStatus.Ok
                && rebuilt.AsSpan().SequenceEqual(original);
        }
        ReturnAll(segments);
        return ok && pool.Outstanding == 0;
    }
}
