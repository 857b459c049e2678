using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Offload;
using static Firezone.Actors.Engine.Tests.Offload.OffloadPackets;

namespace Firezone.Actors.Engine.Tests.Offload;

using Ecn = Firezone.Actors.Engine.Ecn;

public class UdpCoalescerTests
{
    private const int Size = 1000;
    private readonly PacketBufferPool _pool = new(preallocate: 16);

    /// <summary><paramref name="count"/> datagrams of one flow whose payloads continue each other; IDs count up.</summary>
    private static byte[][] Flow(bool ipv6, int count, int lastPayload = Size, Ecn ecn = Ecn.Ect0)
    {
        var packets = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            packets[i] = Udp(ipv6, i == count - 1 ? lastPayload : Size, ecn: ecn, id: (ushort)(7 + i), payloadStart: (uint)(i * Size));
        }
        return packets;
    }

    private static int[] Run(PacketBuffer[] buffers, int start, int maxLength = 65535) => RunOf(UdpCoalescer.FindRun, buffers, start, maxLength);

    private int[] Members(byte[][] packets, int start = 0, int maxLength = 65535) => MembersOf(UdpCoalescer.FindRun, _pool, packets, start, maxLength);

    private int Count(byte[][] packets, int start = 0, int maxLength = 65535) => Members(packets, start, maxLength).Length;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_run_of_one_flow_becomes_one_super_packet_with_a_uso_header(bool ipv6)
    {
        byte[][] packets = Flow(ipv6, 4, lastPayload: 300);
        var buffers = ToBuffers(_pool, packets);
        try
        {
            int[] members = Run(buffers, 0);
            Assert.Equal([0, 1, 2, 3], members);
            var destination = new byte[70000];
            int written = UdpCoalescer.Build(buffers, members, destination);
            int l4 = ipv6 ? 40 : 20;
            var header = VirtioNetHeader.Read(destination);
            Assert.Equal(VirtioNetHeader.FlagNeedsCsum, header.Flags);
            Assert.Equal(VirtioNetHeader.GsoUdpL4, header.GsoType);
            Assert.Equal(Size, header.GsoSize);
            Assert.Equal(l4 + 8, header.HdrLen);
            Assert.Equal(l4, header.CsumStart);
            Assert.Equal(UdpCoalescer.UdpChecksumOffset, header.CsumOffset);

            // Completed, the super-packet is the one datagram that carries all four payloads (the
            // UDP length covering all of them, as after the kernel's own GRO).
            byte[] super = destination.AsSpan(VirtioNetHeader.Size, written - VirtioNetHeader.Size).ToArray();
            Assert.Equal(OffloadStatus.Ok, ChecksumOffload.Complete(super, header));
            Assert.Equal(Udp(ipv6, 3 * Size + 300, id: 7), super);
            Assert.True(ipv6 || Ipv4HeaderChecksumValid(super));
        }
        finally
        {
            ReturnAll(buffers);
        }
        Assert.Equal(0, _pool.Outstanding);
    }

    [Fact]
    public void A_ce_marked_datagram_is_never_merged_with_unmarked_ones()
    {
        byte[][] packets = Flow(false, 5);
        packets[2] = Udp(false, Size, ecn: Ecn.Ce, id: 9, payloadStart: 2 * Size);
        Assert.Equal(2, Count(packets, 0));
        Assert.Equal(1, Count(packets, 2)); // the CE datagram does not merge with the ECT(0) ones after it
        Assert.Equal(2, Count(packets, 3));
        Assert.Equal(5, Count(Flow(false, 5, ecn: Ecn.Ce))); // same codepoint throughout: fine
        byte[][] ipv6 = Flow(true, 3);
        ipv6[1] = Udp(true, Size, ecn: Ecn.Ce, payloadStart: Size);
        Assert.Equal(1, Count(ipv6));
        byte[][] ect1 = Flow(true, 3);
        ect1[2] = Udp(true, Size, ecn: Ecn.Ect1, payloadStart: 2 * Size);
        Assert.Equal(2, Count(ect1));
    }

    [Fact]
    public void Interleaved_flows_are_each_merged_but_a_flow_is_never_reordered()
    {
        static byte[] Other(int index) => Udp(false, Size, id: (ushort)(50 + index), sourcePort: 40002);
        byte[][] interleaved = [Udp(false, Size, id: 7), Other(0), Udp(false, Size, id: 8), Other(1),
            Tcp(false, 1000, Size), Udp(false, Size, id: 9)];
        Assert.Equal([0, 2, 5], Members(interleaved, 0));
        Assert.Equal([1, 3], Members(interleaved, 1));
        // A datagram of the same flow that cannot join (larger) stops the run: the one after it must not overtake it.
        byte[][] blocked = [Udp(false, Size), Udp(false, Size + 1), Udp(false, Size)];
        Assert.Equal([0], Members(blocked, 0));
        // A fragment with the same addresses might belong to the flow: it is never overtaken either.
        byte[] fragment = Udp(false, Size);
        fragment[6] |= 0x20; // MF
        fragment[10] = fragment[11] = 0;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(fragment.AsSpan(10),
            Firezone.Actors.Engine.Packets.Ipv4Checksum.Compute(fragment.AsSpan(0, 20)));
        Assert.Equal([0], Members([Udp(false, Size), fragment, Udp(false, Size)], 0));
        Assert.Equal(0, _pool.Outstanding);
    }

    [Fact]
    public void Datagrams_that_the_kernel_must_see_alone_end_or_prevent_a_run()
    {
        Assert.Equal(2, Count([Udp(false, Size), Udp(false, 10), Udp(false, 10)])); // a short one ends it
        Assert.Equal(1, Count([Udp(false, Size), Udp(false, Size + 1)])); // larger than the first
        Assert.Equal(1, Count([Udp(false, Size), Udp(false, Size, dscp: 10)])); // another DSCP
        Assert.Equal(1, Count([Udp(true, Size), Udp(true, Size, dscp: 10)]));
        Assert.Equal(1, Count([Udp(false, Size), Udp(false, Size, dontFragment: false, id: 101)])); // DF differs
        Assert.Equal(1, Count([Udp(false, Size, dontFragment: false, id: 1), Udp(false, Size, dontFragment: false, id: 5)]));
        Assert.Equal(2, Count([Udp(false, Size, dontFragment: false, id: 1), Udp(false, Size, dontFragment: false, id: 2)]));
        Assert.Equal(1, Count([Udp(false, Size), Udp(true, Size)])); // other family
        Assert.Equal(1, Count([Udp(false, 0), Udp(false, 0)])); // no payload
        Assert.Equal(1, Count([Udp(false, Size), Tcp(false, 1000, Size)]));
        Assert.Equal(3, Count([Udp(false, Size), Udp(false, Size), Udp(false, Size)]));
        Assert.Equal(2, Count([Udp(false, Size), Udp(false, Size), Udp(false, Size)], maxLength: 2100));

        byte[] corrupt = Udp(false, Size);
        corrupt[^1] ^= 0x55;
        Assert.Equal(1, Count([Udp(false, Size), corrupt]));
        Assert.Equal(1, Count([corrupt, Udp(false, Size)]));

        // IPv4 without a UDP checksum (RFC 768 allows it): the kernel would have to invent one.
        byte[] noChecksum = Udp(false, Size);
        noChecksum[26] = noChecksum[27] = 0;
        Assert.Equal(1, Count([Udp(false, Size), noChecksum]));
        Assert.Equal(1, Count([noChecksum, Udp(false, Size)]));

        // A UDP length that disagrees with the IP length.
        byte[] badLength = Udp(false, Size);
        badLength[25] ^= 1;
        Assert.Equal(1, Count([Udp(false, Size), badLength]));
        Assert.Equal(0, _pool.Outstanding);
    }

    [Fact]
    public void A_datagram_with_a_bad_ipv4_header_checksum_is_never_merged_and_stays_as_it_was()
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
            Assert.Equal([0, 1], Run(buffers, 0)); // the run ends before it; the datagrams after it do not overtake it
            Assert.Equal([2], Run(buffers, 2)); // written alone
            Assert.Equal([3, 4], Run(buffers, 3));
            // Its neighbours merge into the super-packets they always were, and it stays byte for byte as it came.
            var destination = new byte[70000];
            foreach (var (members, expected) in new[]
            {
                (new[] { 0, 1 }, Udp(false, 2 * Size, id: 7)),
                (new[] { 3, 4 }, Udp(false, 2 * Size, id: 10, payloadStart: 3 * Size)),
            })
            {
                int written = UdpCoalescer.Build(buffers, members, destination);
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
        Assert.Equal(1, Count([corrupt, Udp(false, Size, payloadStart: 3 * Size)])); // as the head (checked once a partner turns up)
        Assert.Equal(1, Count([Udp(false, Size, payloadStart: Size), corrupt])); // right after the head
        Assert.Equal(0, _pool.Outstanding);
    }

    [Fact]
    public void A_super_packet_stays_within_the_length_and_segment_limits()
    {
        byte[][] small = Enumerable.Range(0, 100).Select(i => Udp(false, 100, id: (ushort)(7 + i))).ToArray();
        Assert.Equal(UdpCoalescer.MaxSegments, Count(small));
        // 1400-byte payloads: the 16-bit IP length ends the run before the segment limit does.
        byte[][] large = Enumerable.Range(0, 60).Select(i => Udp(false, 1400, id: (ushort)(7 + i))).ToArray();
        int run = Count(large, 0, int.MaxValue);
        Assert.True(run < UdpCoalescer.MaxSegments);
        Assert.True(20 + 8 + run * 1400 <= 65535);
        Assert.True(20 + 8 + (run + 1) * 1400 > 65535);
    }

    public static Arbitrary<(bool Ipv6, int Payload, int Size, Ecn Ecn, bool DontFragment)> SuperPackets() =>
        (from ipv6 in ArbMap.Default.GeneratorFor<bool>()
         from size in Gen.Choose(1, 1400)
         from payload in Gen.Choose(1, Math.Min(60000, UdpCoalescer.MaxSegments * size))
         from ecn in Gen.Elements(Ecn.NotEct, Ecn.Ect0, Ecn.Ect1, Ecn.Ce)
         from dontFragment in ArbMap.Default.GeneratorFor<bool>()
         select (ipv6, payload, size, ecn, dontFragment)).ToArbitrary();

    /// <summary>
    /// The inverse of the read path: a USO super-packet split by <see cref="GsoSegmenter"/> and
    /// coalesced again is the same super-packet, for every size, family and ECN codepoint, with and
    /// without DF (without it the IPv4 IDs count up from 0xFFF0, through the wrap to 0).
    /// </summary>
    [Property(MaxTest = 200, Arbitrary = [typeof(UdpCoalescerTests)])]
    public bool Segment_then_coalesce_gives_back_the_super_packet((bool Ipv6, int Payload, int Size, Ecn Ecn, bool DontFragment) c)
    {
        int l4 = c.Ipv6 ? 40 : 20;
        byte[] original = Udp(c.Ipv6, c.Payload, ecn: c.Ecn, id: 0xFFF0, dontFragment: c.DontFragment);
        var header = new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum, GsoType = VirtioNetHeader.GsoUdpL4,
            HdrLen = (ushort)(l4 + 8), GsoSize = (ushort)c.Size, CsumStart = (ushort)l4, CsumOffset = UdpCoalescer.UdpChecksumOffset,
        };
        var segmenter = new GsoSegmenter();
        byte[] partial = AsPartial(original, c.Ipv6, 17);
        if (segmenter.Begin(partial, header) != OffloadStatus.Ok)
        {
            return false;
        }
        var pool = new PacketBufferPool(preallocate: 0, maxBuffers: 100000);
        var segments = new PacketBuffer[segmenter.PendingSegments];
        for (int i = 0; i < segments.Length; i++)
        {
            segments[i] = pool.Rent();
            int length = segmenter.NextSegment(partial, segments[i].Memory[PacketBuffer.Headroom..]);
            segments[i].SetData(PacketBuffer.Headroom, length);
        }
        bool ok;
        if (segments.Length == 1)
        {
            ok = Run(segments, 0).Length == 1 && segments[0].Data.SequenceEqual(original);
        }
        else
        {
            int[] members = Run(segments, 0);
            var destination = new byte[70000];
            int written = UdpCoalescer.Build(segments, members, destination);
            byte[] rebuilt = destination.AsSpan(VirtioNetHeader.Size, written - VirtioNetHeader.Size).ToArray();
            var rebuiltHeader = VirtioNetHeader.Read(destination);
            ok = members.Length == segments.Length
                && rebuiltHeader.GsoSize == c.Size
                && ChecksumOffload.Complete(rebuilt, rebuiltHeader) == OffloadStatus.Ok
                && rebuilt.AsSpan().SequenceEqual(original);
        }
        ReturnAll(segments);
        return ok && pool.Outstanding == 0;
    }
}
