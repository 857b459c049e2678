using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Offload;
using Firezone.Actors.Engine.Packets;
using static Firezone.Actors.Engine.Tests.Offload.OffloadPackets;

namespace Firezone.Actors.Engine.Tests.Offload;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>
/// ECN review: the whole offload pipeline on both sides of the tunnel, with the engine's own rules.
/// Outbound: a TUN super-packet (TSO/USO) is split (GsoSegmenter) and every segment is copied in
/// (RFC 6040 section 4.1). Inbound: decrypted packets are copied out one by one (section 4.2, drops
/// removed as PeerDataPath.DeliverInner does), merged as LinuxTunDevice.WriteWithHeader merges them
/// (TcpCoalescer / UdpCoalescer), and each super-packet is cut again as the kernel would cut it
/// (modelled by GsoSegmenter, after the NEEDS_CSUM completion the virtio header asks for). What
/// the kernel's stack then sees must be, flow by flow, exactly the copied-out packets: same ECN
/// codepoint on every one (a CE mark never spread to, or lost from, a neighbour), valid IPv4 header
/// checksums, valid transport checksums.
/// </summary>
public sealed class EcnReviewPipelineTests
{
    private static readonly Ecn[] All = [Ecn.NotEct, Ecn.Ect1, Ecn.Ect0, Ecn.Ce];

    [Theory]
    [InlineData(false, 6)]
    [InlineData(true, 6)]
    [InlineData(false, 17)]
    [InlineData(true, 17)]
    public void A_tun_super_packet_of_any_codepoint_gives_segments_with_that_codepoint_and_the_same_outer(bool ipv6, byte protocol)
    {
        const int segmentSize = 1200;
        foreach (Ecn ecn in All)
        {
            byte[] full = protocol == 6
                ? Tcp(ipv6, 77_000, 5 * segmentSize + 100, flags: Ack | Psh, ecn: ecn, id: 65533, dontFragment: false, dscp: 46)
                : Udp(ipv6, 5 * segmentSize + 100, ecn: ecn, id: 65533, dontFragment: false, dscp: 46);
            byte[] super = AsPartial(full, ipv6, protocol);
            int l4 = ipv6 ? 40 : 20;
            var header = new VirtioNetHeader
            {
                Flags = VirtioNetHeader.FlagNeedsCsum,
                GsoType = protocol == 17 ? VirtioNetHeader.GsoUdpL4 : ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4,
                HdrLen = (ushort)(l4 + (protocol == 6 ? 32 : 8)),
                GsoSize = segmentSize,
                CsumStart = (ushort)l4,
                CsumOffset = (ushort)(protocol == 6 ? 16 : 6),
            };
            var segmenter = new GsoSegmenter();
            Assert.Equal(OffloadStatus.Ok, segmenter.Begin(super, header));
            var destination = new byte[4096];
            int count = 0;
            int length;
            while ((length = segmenter.NextSegment(super, destination)) > 0)
            {
                Span<byte> segment = destination.AsSpan(0, length);
                Assert.Equal(IpParseStatus.Ok, IpPacket.TryGetEcn(segment, out Ecn inner));
                Assert.Equal(ecn, inner);
                if (!ipv6)
                {
                    Assert.True(Ipv4HeaderChecksumValid(segment), $"{ecn} segment {count}: IPv4 header checksum");
                    Assert.Equal(full[1], segment[1]); // the whole TOS byte, DSCP too
                }
                else
                {
                    Assert.Equal(full.AsSpan(0, 4).ToArray(), segment[..4].ToArray());
                }
                Assert.True(TransportChecksumValid(segment), $"{ecn} segment {count}: transport checksum");
                // Copy-in per segment: normal mode copies, CE included; the other modes send Not-ECT.
                Assert.Equal(ecn, EcnEncapsulation.Outer(inner, EcnMode.Normal));
                Assert.Equal(Ecn.NotEct, EcnEncapsulation.Outer(inner, EcnMode.Compatibility));
                Assert.Equal(Ecn.NotEct, EcnEncapsulation.Outer(inner, EcnMode.Off));
                count++;
            }
            Assert.Equal(6, count);
        }
    }

    /// <summary>One packet of the inbound model: what copy-out made of it, and which flow it belongs to.</summary>
    private sealed record Expected(int Flow, byte[] Bytes);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void Copied_out_packets_merged_and_cut_again_keep_each_their_own_codepoint(int seed)
    {
        var random = new Random(seed);
        var pool = new PacketBufferPool(preallocate: 256);
        _superPackets = 0;
        for (int round = 0; round < 40; round++)
        {
            // Four flows interleaved: TCP and UDP, IPv4 and IPv6. Inner mostly ECT(0) (an ECN-capable
            // sender), some Not-ECT (retransmissions, pure ACKs of Linux TCP) or ECT(1) (L4S); outer
            // mostly the inner (copy-in at the far end), some CE or ECT(1) from the path, some nonsense.
            var flows = new (bool Ipv6, byte Protocol, uint Next, ushort Id)[]
            {
                (false, 6, 1000, 1), (true, 6, 5000, 1), (false, 17, 0, 300), (true, 17, 0, 300),
            };
            int count = random.Next(2, 120);
            var expected = new List<Expected>();
            var input = new List<byte[]>();
            const int Mss = 1000;
            for (int i = 0; i < count; i++)
            {
                int f = random.Next(10) < 7 ? random.Next(2) * 2 : random.Next(4); // mostly TCPv4 and UDPv4
                var flow = flows[f];
                Ecn inner = random.Next(10) switch { < 7 => Ecn.Ect0, 7 => Ecn.NotEct, 8 => Ecn.Ect1, _ => Ecn.Ce };
                Ecn outer = random.Next(10) switch { < 6 => inner, 6 or 7 => Ecn.Ce, 8 => Ecn.Ect1, _ => All[random.Next(4)] };
                int payload = random.Next(20) == 0 ? random.Next(1, Mss) : Mss;
                byte[] packet = flow.Protocol == 6
                    ? Tcp(flow.Ipv6, flow.Next, payload, ecn: inner, id: flow.Id, dontFragment: random.Next(4) != 0)
                    : Udp(flow.Ipv6, payload, ecn: inner, id: flow.Id, dontFragment: random.Next(4) != 0, payloadStart: flow.Next);
                flows[f] = (flow.Ipv6, flow.Protocol, flow.Next + (uint)payload, (ushort)(flow.Id + 1));
                // Copy-out, as PeerDataPath.DeliverInner: the drop verdict removes the packet.
                var result = IpPacket.ApplyDecapsulation(packet, outer, out IpParseStatus status);
                Assert.Equal(IpParseStatus.Ok, status);
                Assert.Equal(EcnDecapsulation.Decapsulate(inner, outer), result);
                if (result.IsDrop)
                {
                    Assert.Equal(Ecn.NotEct, inner);
                    Assert.Equal(Ecn.Ce, outer);
                    continue;
                }
                Assert.Equal(IpParseStatus.Ok, IpPacket.TryGetEcn(packet, out Ecn after));
                Assert.Equal(result.Inner, after);
                if (!flow.Ipv6)
                {
                    Assert.True(Ipv4HeaderChecksumValid(packet), "IPv4 header checksum after copy-out");
                }
                input.Add(packet);
                expected.Add(new Expected(f, (byte[])packet.Clone()));
            }
            PacketBuffer[] buffers = ToBuffers(pool, input.ToArray());
            try
            {
                List<(int Flow, byte[] Bytes)> delivered = WriteAndCutAgain(buffers, expected);
                for (int f = 0; f < flows.Length; f++)
                {
                    var want = expected.Where(e => e.Flow == f).Select(e => e.Bytes).ToList();
                    var got = delivered.Where(d => d.Flow == f).Select(d => d.Bytes).ToList();
                    Assert.Equal(want.Count, got.Count);
                    for (int k = 0; k < want.Count; k++)
                    {
                        AssertSamePacket(want[k], got[k], $"seed {seed} round {round} flow {f} packet {k}");
                    }
                }
            }
            finally
            {
                ReturnAll(buffers);
            }
        }
        Assert.Equal(0, pool.Outstanding);
        Assert.True(_superPackets > 10, $"only {_superPackets} super-packets: the merge path was hardly exercised");
    }

    private int _superPackets;

    /// <summary>
    /// LinuxTunDevice.WriteWithHeader's loop over a batch, then what the kernel does with each write:
    /// a super-packet's NEEDS_CSUM completed over csum_start.. and the super-packet cut at gso_size.
    /// Checks on the way that every run holds one codepoint and that the super-packet's own checksums
    /// (IPv4 header, transport after completion) are right.
    /// </summary>
    private List<(int Flow, byte[] Bytes)> WriteAndCutAgain(PacketBuffer[] packets, List<Expected> expected)
    {
        var delivered = new List<(int, byte[])>();
        var taken = new bool[packets.Length];
        var members = new int[packets.Length];
        var scratch = new byte[128 * 1024];
        var segment = new byte[4096];
        for (int i = 0; i < packets.Length; i++)
        {
            if (taken[i])
            {
                continue;
            }
            bool udp = UdpCoalescer.IsUdp(packets[i].Data);
            int run = udp
                ? UdpCoalescer.FindRun(packets, i, taken, members, scratch.Length - VirtioNetHeader.Size)
                : TcpCoalescer.FindRun(packets, i, taken, members, scratch.Length - VirtioNetHeader.Size);
            if (run == 1)
            {
                delivered.Add((expected[i].Flow, packets[i].Data.ToArray()));
                continue;
            }
            int[] run_ = members[..run];
            Assert.Equal(IpParseStatus.Ok, IpPacket.TryGetEcn(packets[run_[0]].Data, out Ecn headEcn));
            foreach (int m in run_)
            {
                Assert.Equal(expected[run_[0]].Flow, expected[m].Flow);
                Assert.Equal(IpParseStatus.Ok, IpPacket.TryGetEcn(packets[m].Data, out Ecn memberEcn));
                Assert.True(headEcn == memberEcn, $"a run mixes {headEcn} (packet {run_[0]}) with {memberEcn} (packet {m})");
            }
            _superPackets++;
            int written = udp ? UdpCoalescer.Build(packets, run_, scratch) : TcpCoalescer.Build(packets, run_, scratch);
            var header = VirtioNetHeader.Read(scratch);
            byte[] super = scratch.AsSpan(VirtioNetHeader.Size, written - VirtioNetHeader.Size).ToArray();
            bool ipv6 = super[0] >> 4 == 6;
            Assert.Equal(IpParseStatus.Ok, IpPacket.TryGetEcn(super, out Ecn superEcn));
            Assert.Equal(headEcn, superEcn);
            if (!ipv6)
            {
                Assert.True(Ipv4HeaderChecksumValid(super), "super-packet IPv4 header checksum");
            }
            Assert.Equal(ipv6 ? 40 : 20, header.CsumStart);
            Assert.Equal(udp ? 6 : 16, header.CsumOffset);
            // The virtio header's NEEDS_CSUM: the field holds the pseudo-header sum, so completing it
            // over csum_start.. must give the super-packet's valid transport checksum.
            byte[] completed = (byte[])super.Clone();
            Assert.Equal(OffloadStatus.Ok, ChecksumOffload.Complete(completed, header));
            Assert.True(TransportChecksumValid(completed), "super-packet transport checksum after NEEDS_CSUM");
            var segmenter = new GsoSegmenter();
            Assert.Equal(OffloadStatus.Ok, segmenter.Begin(super, header));
            Assert.Equal(run, segmenter.PendingSegments);
            int length;
            int k = 0;
            while ((length = segmenter.NextSegment(super, segment)) > 0)
            {
                delivered.Add((expected[run_[k]].Flow, segment.AsSpan(0, length).ToArray()));
                k++;
            }
        }
        return delivered;
    }

    /// <summary>
    /// The same packet, with what merging may legitimately change left out: the TCP window (GRO keeps
    /// the first segment's) and so the TCP checksum; the IPv4 identification of DF packets (RFC 6864:
    /// meaningless with DF; the kernel numbers segments from the head's) and so the header checksum.
    /// Those checksums must still verify.
    /// </summary>
    private static void AssertSamePacket(byte[] want, byte[] got, string where)
    {
        Assert.True(want.Length == got.Length, $"{where}: length {got.Length}, want {want.Length}");
        bool ipv6 = want[0] >> 4 == 6;
        int l4 = ipv6 ? 40 : 20;
        byte protocol = ipv6 ? want[6] : want[9];
        Assert.Equal(IpParseStatus.Ok, IpPacket.TryGetEcn(want, out Ecn wantEcn));
        Assert.Equal(IpParseStatus.Ok, IpPacket.TryGetEcn(got, out Ecn gotEcn));
        Assert.True(wantEcn == gotEcn, $"{where}: ECN {gotEcn} written, copy-out gave {wantEcn}");
        if (!ipv6)
        {
            Assert.True(Ipv4HeaderChecksumValid(got), $"{where}: IPv4 header checksum");
        }
        Assert.True(TransportChecksumValid(got), $"{where}: transport checksum");
        var a = (byte[])want.Clone();
        var b = (byte[])got.Clone();
        foreach (var p in new[] { a, b })
        {
            if (!ipv6)
            {
                p[10] = p[11] = 0;
                if ((p[6] & 0x40) != 0)
                {
                    p[4] = p[5] = 0;
                }
            }
            if (protocol == 6)
            {
                p[l4 + 14] = p[l4 + 15] = 0;
                p[l4 + 16] = p[l4 + 17] = 0;
            }
        }
        Assert.True(a.AsSpan().SequenceEqual(b), $"{where}: bytes differ");
    }

    [Fact]
    public void Ipv4_checksum_stays_valid_through_every_copy_out_rewrite_for_every_tos_and_header()
    {
        // Every TOS byte (DSCP with every codepoint), every codepoint pair, with and without options,
        // and checksums that land on the 0x0000 / 0xFFFF edge: RFC 1624 equation 3 against a full
        // RFC 1071 recomputation.
        var random = new Random(6040);
        for (int tos = 0; tos < 256; tos++)
        {
            foreach (Ecn outer in All)
            {
                for (int trial = 0; trial < 8; trial++)
                {
                    int ihl = trial % 2 == 0 ? 5 : 6 + random.Next(10);
                    var p = new byte[ihl * 4 + 8];
                    random.NextBytes(p);
                    p[0] = (byte)(0x40 | ihl);
                    p[1] = (byte)tos;
                    BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
                    p[10] = p[11] = 0;
                    BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Ipv4Checksum.Compute(p.AsSpan(0, ihl * 4)));
                    Ecn inner = (Ecn)(tos & 3);
                    var result = IpPacket.ApplyDecapsulation(p, outer, out IpParseStatus status);
                    Assert.Equal(IpParseStatus.Ok, status);
                    Assert.True(Ipv4Checksum.Compute(p.AsSpan(0, ihl * 4)) == 0, $"TOS {tos:x2} outer {outer} IHL {ihl}");
                    Assert.Equal(tos & 0xFC, p[1] & 0xFC); // DSCP untouched
                    Assert.Equal(result.IsDrop ? inner : result.Inner, (Ecn)(p[1] & 3));
                }
            }
        }
    }
}
