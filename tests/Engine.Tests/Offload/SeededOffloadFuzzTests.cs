using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Offload;

namespace Firezone.Actors.Engine.Tests.Offload;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>
/// Deterministic (fixed seed, bounded count) fuzzing of the two TUN offload paths as the device
/// drives them, checked with reference code of this file only (plain RFC 1071, its own parser):
/// the read path (virtio_net_hdr + packet: checksum completion or TSO/USO segmentation) on valid
/// super-packets of every shape (IPv4 options, IPv6 extension headers, TCP options) and on
/// mutated ones (packet bytes, lengths, IHL, data offset, vnet header fields); and the write path
/// (a batch of several interleaved flows with mutated and foreign packets, merged by the
/// coalescers, each super-packet segmented again as the kernel does). A failure names the seed,
/// the iteration and the input in hex.
/// </summary>
public class SeededOffloadFuzzTests
{
    private const byte Tcp = 6, Udp = 17;
    private const byte Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10, Urg = 0x20, Ece = 0x40, Cwr = 0x80;

    // ---- reference code -------------------------------------------------------------------------

    /// <summary>RFC 1071 the plain way: 16-bit big-endian words, end-around carry; the sum, not complemented.</summary>
    private static uint PlainSum(ReadOnlySpan<byte> data, uint sum = 0)
    {
        for (int i = 0; i < data.Length; i += 2)
        {
            sum += (uint)(data[i] << 8 | (i + 1 < data.Length ? data[i + 1] : 0));
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return sum;
    }

    private static uint PseudoSum(ReadOnlySpan<byte> p, bool ipv6, byte protocol, int upperLength)
    {
        uint sum = PlainSum(ipv6 ? p.Slice(8, 32) : p.Slice(12, 8));
        sum = PlainSum([0, protocol, (byte)(upperLength >> 24), (byte)(upperLength >> 16), (byte)(upperLength >> 8), (byte)upperLength], sum);
        return sum;
    }

    /// <summary>The transport checksum at <paramref name="l4"/> verifies over the pseudo-header of the IP header's addresses.</summary>
    private static bool TransportValid(ReadOnlySpan<byte> p, bool ipv6, int l4, byte protocol) =>
        PlainSum(p[l4..], PseudoSum(p, ipv6, protocol, p.Length - l4)) == 0xFFFF;

    private static bool Ipv4HeaderValid(ReadOnlySpan<byte> p) => PlainSum(p[..((p[0] & 0x0F) * 4)]) == 0xFFFF;

    private static void WriteTransportChecksum(byte[] p, bool ipv6, int l4, byte protocol)
    {
        int at = l4 + (protocol == Tcp ? 16 : 6);
        p[at] = 0;
        p[at + 1] = 0;
        ushort checksum = (ushort)~PlainSum(p.AsSpan(l4), PseudoSum(p, ipv6, protocol, p.Length - l4));
        if (checksum == 0 && protocol == Udp)
        {
            checksum = 0xFFFF;
        }
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(at), checksum);
    }

    private static void WritePartial(byte[] p, bool ipv6, int l4, byte protocol)
    {
        int at = l4 + (protocol == Tcp ? 16 : 6);
        uint sum = PseudoSum(p, ipv6, protocol, p.Length - l4);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(at), (ushort)sum);
    }

    private static void WriteIpv4HeaderChecksum(byte[] p)
    {
        p[10] = 0;
        p[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), (ushort)~PlainSum(p.AsSpan(0, (p[0] & 0x0F) * 4)));
    }

    private static Ecn EcnOf(ReadOnlySpan<byte> p) => p[0] >> 4 == 6 ? (Ecn)((p[1] >> 4) & 3) : (Ecn)(p[1] & 3);

    private sealed record Shape(bool Ipv6, bool Udp, int L4, int HeaderLength);

    /// <summary>
    /// A packet: IPv4 with <paramref name="ipv4OptionWords"/> words of options (NOPs and a
    /// harmless option) or IPv6 with a hop-by-hop header of <paramref name="ipv6Extension"/> bytes (0: none,
    /// else a multiple of 8), TCP with <paramref name="tcpOptionLength"/> bytes of options, or UDP;
    /// full checksums.
    /// </summary>
    private static byte[] Build(bool ipv6, bool udp, ushort sourcePort, uint sequence, int payloadLength, byte flags, Ecn ecn, ushort id,
        bool dontFragment, int tcpOptionLength, int ipv4OptionWords, int ipv6Extension, byte dscp, out Shape shape, uint payloadSeed = 0)
    {
        int l4 = ipv6 ? 40 + ipv6Extension : 20 + 4 * ipv4OptionWords;
        int transportHeader = udp ? 8 : 20 + tcpOptionLength;
        var p = new byte[l4 + transportHeader + payloadLength];
        byte protocol = udp ? Udp : Tcp;
        if (ipv6)
        {
            p[0] = (byte)(0x60 | (dscp >> 2));
            p[1] = (byte)(((dscp & 3) << 6) | ((byte)ecn << 4) | 0x03);
            p[2] = 0x45;
            p[3] = 0x67;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)(p.Length - 40));
            p[6] = ipv6Extension > 0 ? (byte)0 : protocol;
            p[7] = 61;
            p[8] = 0xfd;
            p[23] = 1;
            p[24] = 0xfd;
            p[31] = 0x31;
            p[39] = 2;
            if (ipv6Extension > 0)
            {
                p[40] = protocol;
                p[41] = (byte)(ipv6Extension / 8 - 1);
                p[42] = 1; // PadN covering the rest
                p[43] = (byte)(ipv6Extension - 4);
            }
        }
        else
        {
            p[0] = (byte)(0x40 | (5 + ipv4OptionWords));
            p[1] = (byte)((dscp << 2) | (byte)ecn);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), id);
            p[6] = dontFragment ? (byte)0x40 : (byte)0;
            p[8] = 63;
            p[9] = protocol;
            p[12] = 10; p[13] = 7; p[14] = 0; p[15] = 1;
            p[16] = 192; p[17] = 0; p[18] = 2; p[19] = 99;
            for (int i = 20; i < l4; i++)
            {
                p[i] = 1; // NOP
            }
            if (ipv4OptionWords > 0)
            {
                p[l4 - 1] = 0; // End of Option List
            }
            WriteIpv4HeaderChecksum(p);
        }
        Span<byte> t = p.AsSpan(l4);
        BinaryPrimitives.WriteUInt16BigEndian(t, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], udp ? (ushort)4500 : (ushort)443);
        if (udp)
        {
            BinaryPrimitives.WriteUInt16BigEndian(t[4..], (ushort)(8 + payloadLength));
        }
        else
        {
            BinaryPrimitives.WriteUInt32BigEndian(t[4..], sequence);
            BinaryPrimitives.WriteUInt32BigEndian(t[8..], 0xA0B0C0D0);
            t[12] = (byte)(((20 + tcpOptionLength) / 4) << 4);
            t[13] = flags;
            BinaryPrimitives.WriteUInt16BigEndian(t[14..], 1024);
            for (int i = 0; i < tcpOptionLength; i++)
            {
                t[20 + i] = i % 10 < 2 ? (byte)1 : (byte)(0x20 + i);
            }
        }
        for (int i = 0; i < payloadLength; i++)
        {
            uint n = unchecked((udp ? payloadSeed : sequence) + (uint)i);
            t[transportHeader + i] = (byte)(n * 13 + (n >> 9));
        }
        WriteTransportChecksum(p, ipv6, l4, protocol);
        shape = new Shape(ipv6, udp, l4, l4 + transportHeader);
        return p;
    }

    /// <summary>Assert.True with the message (a hex dump) made only on a failure.</summary>
    private static void Check(bool condition, Func<string> message)
    {
        if (!condition)
        {
            Assert.Fail(message());
        }
    }

    private static string Describe(int seed, int iteration, ReadOnlySpan<byte> packet, VirtioNetHeader? header = null)
    {
        string vnet = "";
        if (header is { } h)
        {
            var bytes = new byte[VirtioNetHeader.Size];
            h.Write(bytes);
            vnet = $" vnet={Convert.ToHexString(bytes)}";
        }
        return $"seed {seed} iteration {iteration}{vnet} packet={Convert.ToHexString(packet)}";
    }

    // ---- the read path ----------------------------------------------------------------------------

    /// <summary>
    /// Valid TSO/USO super-packets of every shape: every segment is checked field by field against the
    /// super-packet (lengths, identification, sequence number, flags, the ECN codepoint of the whole),
    /// its IPv4 header checksum and its TCP/UDP checksum recomputed here, and the payloads concatenate
    /// to the super-packet's.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Valid_super_packets_of_every_shape_segment_into_valid_packets(int seed)
    {
        var random = new Random(seed);
        var segmenter = new GsoSegmenter();
        for (int iteration = 0; iteration < 400; iteration++)
        {
            bool ipv6 = random.Next(2) == 0;
            bool udp = random.Next(3) == 0;
            bool needsCsum = !ipv6 || random.Next(4) != 0;
            int extension = ipv6 && needsCsum && random.Next(3) == 0 ? 8 * random.Next(1, 4) : 0;
            int ipv4Options = !ipv6 && random.Next(3) == 0 ? random.Next(1, 11) : 0;
            int tcpOptions = udp ? 0 : 4 * random.Next(0, 11);
            int gsoSize = random.Next(4) == 0 ? random.Next(1, 64) : random.Next(500, 1500);
            int maxPayload = Math.Min(60000 - 200, gsoSize * 64);
            int payload = random.Next(1, maxPayload);
            byte flags = (byte)(Ack | (random.Next(2) == 0 ? Psh : 0) | (random.Next(4) == 0 ? Fin : 0) | (random.Next(4) == 0 ? Cwr : 0)
                | (random.Next(4) == 0 ? Ece : 0));
            var ecn = (Ecn)random.Next(4);
            byte[] packet = Build(ipv6, udp, (ushort)random.Next(1024, 65536), (uint)random.NextInt64(0, 1L << 32), payload, flags, ecn,
                (ushort)random.Next(65536), random.Next(2) == 0, tcpOptions, ipv4Options, extension, (byte)random.Next(64), out Shape shape,
                (uint)random.Next());
            byte protocol = udp ? Udp : Tcp;
            if (needsCsum)
            {
                WritePartial(packet, ipv6, shape.L4, protocol);
            }
            else
            {
                // Whatever the field holds, the segmenter computes the checksum from the IP header.
                packet[shape.L4 + (udp ? 6 : 16)] ^= (byte)random.Next(256);
            }
            var header = new VirtioNetHeader
            {
                Flags = needsCsum ? VirtioNetHeader.FlagNeedsCsum : (byte)0,
                GsoType = (byte)((udp ? VirtioNetHeader.GsoUdpL4 : ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4)
                    | (!udp && (flags & Cwr) != 0 ? VirtioNetHeader.GsoEcn : 0)),
                HdrLen = (ushort)shape.HeaderLength,
                GsoSize = (ushort)gsoSize,
                CsumStart = needsCsum ? (ushort)shape.L4 : (ushort)0,
                CsumOffset = needsCsum ? (ushort)(udp ? 6 : 16) : (ushort)0,
            };
            string what = Describe(seed, iteration, packet, header);
            Assert.True(segmenter.Begin(packet, header) == OffloadStatus.Ok, what);
            int expectedCount = (payload + gsoSize - 1) / gsoSize;
            Assert.True(segmenter.PendingSegments == expectedCount, what);
            var destination = new byte[segmenter.MaxSegmentLength + 16];
            int payloadSeen = 0;
            for (int index = 0; index < expectedCount; index++)
            {
                destination.AsSpan().Fill(0x5A);
                int length = segmenter.NextSegment(packet, destination);
                int segmentPayload = Math.Min(gsoSize, payload - payloadSeen);
                Assert.True(length == shape.HeaderLength + segmentPayload, $"segment {index} length {length}: {what}");
                Assert.True(destination.AsSpan(length).IndexOfAnyExcept((byte)0x5A) < 0, $"segment {index} wrote past its end: {what}");
                var segment = destination.AsSpan(0, length).ToArray();
                CheckSegment(segment, packet, shape, index, expectedCount, payloadSeen, gsoSize, what);
                payloadSeen += segmentPayload;
            }
            Assert.True(payloadSeen == payload && !segmenter.HasPending && segmenter.NextSegment(packet, destination) == 0, what);
        }
    }

    private static void CheckSegment(byte[] segment, byte[] packet, Shape shape, int index, int count, int payloadOffset, int gsoSize,
        string what)
    {
        int l4 = shape.L4;
        string at = $"segment {index} of {count}: {what}"; // only read on a failure
        Check(EcnOf(segment) == EcnOf(packet), () => "ECN " + at);
        var expected = packet.AsSpan(0, shape.HeaderLength).ToArray();
        if (shape.Ipv6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(expected.AsSpan(4), (ushort)(segment.Length - 40));
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(expected.AsSpan(2), (ushort)segment.Length);
            BinaryPrimitives.WriteUInt16BigEndian(expected.AsSpan(4), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(4)) + index));
            WriteIpv4HeaderChecksum(expected);
            Check(Ipv4HeaderValid(segment), () => "IPv4 header checksum " + at);
        }
        byte protocol = shape.Udp ? Udp : Tcp;
        if (shape.Udp)
        {
            BinaryPrimitives.WriteUInt16BigEndian(expected.AsSpan(l4 + 4), (ushort)(segment.Length - l4));
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
        }
        // The checksum field itself is checked by recomputation.
        int checksumAt = l4 + (shape.Udp ? 6 : 16);
        expected[checksumAt] = segment[checksumAt];
        expected[checksumAt + 1] = segment[checksumAt + 1];
        Check(segment.AsSpan(0, shape.HeaderLength).SequenceEqual(expected), () =>
            $"headers {Convert.ToHexString(segment[..shape.HeaderLength])} expected {Convert.ToHexString(expected)} " + at);
        Check(TransportValid(segment, shape.Ipv6, l4, protocol), () => "transport checksum " + at);
        Check(!shape.Udp || BinaryPrimitives.ReadUInt16BigEndian(segment.AsSpan(checksumAt)) != 0, () => "UDP checksum 0 " + at);
        Check(segment.AsSpan(shape.HeaderLength).SequenceEqual(packet.AsSpan(shape.HeaderLength + payloadOffset, segment.Length - shape.HeaderLength)), () =>
            "payload " + at);
    }

    /// <summary>
    /// Mutated reads (packet bytes, truncation, lengths, IHL, IPv6 payload length and next header,
    /// TCP data offset, ECN bits; gso_type, gso_size, hdr_len, csum_start, csum_offset, flags) go through
    /// the read path as the device runs it: nothing throws, no segment is written past its length or
    /// past the destination <see cref="GsoSegmenter.MaxSegmentLength"/> asks for, the super-packet is not
    /// changed, the loop ends after <see cref="GsoSegmenter.PendingSegments"/> segments, and every segment
    /// written has consistent IP lengths and a valid IPv4 header checksum (and, without NEEDS_CSUM,
    /// a valid transport checksum). A valid read after each mutated one still segments correctly.
    /// </summary>
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void Mutated_reads_never_throw_and_leave_the_segmenter_usable(int seed)
    {
        var random = new Random(seed);
        var segmenter = new GsoSegmenter();
        int mutatedSegmented = 0;
        for (int iteration = 0; iteration < 3000; iteration++)
        {
            bool ipv6 = random.Next(2) == 0;
            bool udp = random.Next(3) == 0;
            int extension = ipv6 && random.Next(4) == 0 ? 8 * random.Next(1, 3) : 0;
            int ipv4Options = !ipv6 && random.Next(4) == 0 ? random.Next(1, 11) : 0;
            int gsoSize = random.Next(3) == 0 ? random.Next(1, 40) : random.Next(200, 1500);
            int payload = random.Next(1, Math.Min(8000, gsoSize * 20));
            byte[] packet = Build(ipv6, udp, 5555, (uint)random.Next(), payload, (byte)(Ack | Psh), (Ecn)random.Next(4), 7, true,
                udp ? 0 : 4 * random.Next(0, 11), ipv4Options, extension, 0, out Shape shape);
            byte protocol = udp ? Udp : Tcp;
            WritePartial(packet, ipv6, shape.L4, protocol);
            var header = new VirtioNetHeader
            {
                Flags = VirtioNetHeader.FlagNeedsCsum,
                GsoType = udp ? VirtioNetHeader.GsoUdpL4 : ipv6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4,
                HdrLen = (ushort)shape.HeaderLength,
                GsoSize = (ushort)gsoSize,
                CsumStart = (ushort)shape.L4,
                CsumOffset = (ushort)(udp ? 6 : 16),
            };
            byte[] valid = (byte[])packet.Clone();
            var validHeader = header;
            int mutations = random.Next(1, 4);
            for (int m = 0; m < mutations; m++)
            {
                packet = Mutate(random, packet, ref header, shape);
            }
            mutatedSegmented += RunReadPath(segmenter, packet, header, Describe(seed, iteration, packet, header)) > 0 ? 1 : 0;

            // The next, valid, read is not disturbed by what came before.
            string what = Describe(seed, iteration, valid, validHeader) + " (the valid read after the mutated one)";
            Assert.True(segmenter.Begin(valid, validHeader) == OffloadStatus.Ok, what);
            var destination = new byte[segmenter.MaxSegmentLength];
            int count = segmenter.PendingSegments;
            int seen = 0;
            for (int index = 0; index < count; index++)
            {
                int length = segmenter.NextSegment(valid, destination);
                CheckSegment(destination.AsSpan(0, length).ToArray(), valid, shape, index, count, seen, gsoSize, what);
                seen += length - shape.HeaderLength;
            }
        }
        Check(mutatedSegmented > 300, () => $"only {mutatedSegmented} mutated reads got as far as segmentation");
    }

    private static byte[] Mutate(Random random, byte[] packet, ref VirtioNetHeader header, Shape shape)
    {
        int l4 = shape.L4;
        switch (random.Next(16))
        {
            case 0: // a bit flip anywhere in the headers
                if (packet.Length > 0)
                {
                    int at = random.Next(Math.Min(packet.Length, shape.HeaderLength + 4));
                    packet[at] ^= (byte)(1 << random.Next(8));
                }
                break;
            case 1: // truncation
                Array.Resize(ref packet, random.Next(0, packet.Length + 1));
                break;
            case 2: // IHL or version nibble
                if (packet.Length > 0)
                {
                    packet[0] = random.Next(2) == 0 ? (byte)((packet[0] & 0xF0) | random.Next(16)) : (byte)((random.Next(16) << 4) | (packet[0] & 0x0F));
                }
                break;
            case 3: // IPv4 total length / IPv6 payload length
                if (packet.Length >= 6)
                {
                    BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(shape.Ipv6 ? 4 : 2), (ushort)random.Next(65536));
                }
                break;
            case 4: // IPv6 next header / IPv4 protocol
                if (packet.Length >= 10)
                {
                    packet[shape.Ipv6 ? 6 : 9] = (byte)(random.Next(2) == 0 ? random.Next(256) : random.Next(2) == 0 ? Tcp : Udp);
                }
                break;
            case 5: // TCP data offset
                if (packet.Length > l4 + 12)
                {
                    packet[l4 + 12] = (byte)((random.Next(16) << 4) | (packet[l4 + 12] & 0x0F));
                }
                break;
            case 6: // ECN bits
                if (packet.Length >= 2)
                {
                    packet[1] ^= (byte)(shape.Ipv6 ? random.Next(4) << 4 : random.Next(4));
                }
                break;
            case 7:
                header.GsoType = (byte)(random.Next(2) == 0 ? random.Next(256) : new byte[] { 0, 1, 3, 4, 5, 0x81, 0x84, 0x85 }[random.Next(8)]);
                break;
            case 8:
                header.GsoSize = (ushort)(random.Next(3) switch { 0 => 0, 1 => random.Next(1, 8), _ => random.Next(65536) });
                break;
            case 9:
                header.HdrLen = (ushort)random.Next(65536);
                break;
            case 10:
                header.CsumStart = (ushort)(random.Next(2) == 0 ? random.Next(65536) : random.Next(Math.Max(1, packet.Length + 16)));
                break;
            case 11:
                header.CsumOffset = (ushort)(random.Next(2) == 0 ? random.Next(65536) : random.Next(64));
                break;
            case 12:
                header.Flags = (byte)random.Next(256);
                break;
            case 13: // random bytes of the same length, or none
                random.NextBytes(packet);
                break;
            case 14: // an extension (garbage) appended
            {
                int extra = random.Next(1, 100);
                Array.Resize(ref packet, packet.Length + extra);
                break;
            }
            default: // a byte of the transport header
                if (packet.Length > l4)
                {
                    packet[l4 + random.Next(Math.Min(packet.Length - l4, 60))] = (byte)random.Next(256);
                }
                break;
        }
        return packet;
    }

    /// <summary>
    /// What LinuxTunDevice.ReadAvailableWithHeader and TakeSegments do with one read, checked.
    /// </summary>
    private static int RunReadPath(GsoSegmenter segmenter, byte[] packet, VirtioNetHeader header, string what)
    {
        byte[] before = (byte[])packet.Clone();
        if (header.GsoType == VirtioNetHeader.GsoNone)
        {
            var status = ChecksumOffload.Complete(packet, header);
            int at = header.CsumStart + header.CsumOffset;
            for (int i = 0; i < packet.Length; i++)
            {
                bool field = status == OffloadStatus.Ok && (header.Flags & VirtioNetHeader.FlagNeedsCsum) != 0 && (i == at || i == at + 1);
                Check(field || packet[i] == before[i], () => $"byte {i} changed: {what}");
            }
            return 0;
        }
        if (segmenter.Begin(packet, header) != OffloadStatus.Ok)
        {
            segmenter.Clear();
            Assert.False(segmenter.HasPending, what);
            return 0;
        }
        Check(segmenter.MaxSegmentLength > 0 && segmenter.PendingSegments > 0, () => what);
        // The device's buffers: an MTU-sized packet buffer (9000 here, the jumbo case) or the rest is dropped.
        if (segmenter.MaxSegmentLength > 9000 + 100)
        {
            segmenter.Clear();
            return 0;
        }
        int count = segmenter.PendingSegments;
        var destination = new byte[segmenter.MaxSegmentLength + 32];
        int written = 0;
        int headerLength = -1;
        for (int index = 0; index < count; index++)
        {
            destination.AsSpan().Fill(0xC3);
            var room = destination.AsSpan(0, segmenter.MaxSegmentLength);
            int length = segmenter.NextSegment(packet, room);
            Check(length > 0 && length <= segmenter.MaxSegmentLength, () => $"segment {index} length {length}: {what}");
            Check(destination.AsSpan(length).IndexOfAnyExcept((byte)0xC3) < 0, () => $"segment {index} wrote past its end: {what}");
            var segment = destination.AsSpan(0, length);
            bool ipv6 = segment[0] >> 4 == 6;
            if (ipv6)
            {
                Check(BinaryPrimitives.ReadUInt16BigEndian(segment[4..]) == length - 40, () => $"IPv6 payload length, segment {index}: {what}");
            }
            else
            {
                Check(BinaryPrimitives.ReadUInt16BigEndian(segment[2..]) == length, () => $"IPv4 total length, segment {index}: {what}");
                Check(Ipv4HeaderValid(segment), () => $"IPv4 header checksum, segment {index}: {what}");
            }
            if ((header.Flags & VirtioNetHeader.FlagNeedsCsum) == 0)
            {
                int l4 = ipv6 ? 40 : (segment[0] & 0x0F) * 4;
                bool udp = (header.GsoType & 0x7F) == VirtioNetHeader.GsoUdpL4;
                Check(TransportValid(segment, ipv6, l4, udp ? Udp : Tcp), () => $"transport checksum, segment {index}: {what}");
            }
            if (headerLength < 0)
            {
                headerLength = length - Math.Min(header.GsoSize, length);
            }
            written += length;
        }
        Assert.False(segmenter.HasPending, what);
        Assert.True(segmenter.NextSegment(packet, destination) == 0, what);
        Check(packet.AsSpan().SequenceEqual(before), () => "the super-packet changed: " + what);
        return count;
    }

    // ---- the write path ---------------------------------------------------------------------------

    private sealed class Flow
    {
        public required bool Ipv6;
        public required bool Udp;
        public required ushort Port;
        public required int Mss;
        public uint Sequence;
        public ushort Id;
        public bool DontFragment;
        public int TcpOptions;
        public Ecn Ecn;
    }

    /// <summary>
    /// A batch of interleaved TCP and UDP flows (IPv4 and IPv6), some packets mutated (ECN codepoint,
    /// CE, PSH, URG, FIN, window, checksum broken, IPv4 options, IPv6 extension header, truncated,
    /// random bytes, another protocol), written the way LinuxTunDevice.WriteWithHeader does. Then:
    /// every packet is written exactly once; no two packets of one flow change order; a super-packet
    /// holds one ECN codepoint, never a CE-marked TCP segment, at most 64 UDP datagrams and at most
    /// the length allowed; and segmented again as the kernel does it gives back each member byte for
    /// byte (but the identification and header checksum of IPv4 DF packets, and an urgent pointer
    /// without URG), with checksums that verify here.
    /// </summary>
    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    [InlineData(23)]
    [InlineData(24)]
    public void Interleaved_flows_with_mutations_coalesce_and_segment_back_unchanged(int seed)
    {
        var random = new Random(seed);
        var pool = new PacketBufferPool(bufferSize: 2048, preallocate: 0, maxBuffers: 4096);
        var scratch = new byte[128 * 1024];
        int merged = 0;
        for (int iteration = 0; iteration < 600; iteration++)
        {
            var flows = new List<Flow>();
            int flowCount = random.Next(1, 6);
            for (int f = 0; f < flowCount; f++)
            {
                bool ipv6 = random.Next(2) == 0;
                flows.Add(new Flow
                {
                    Ipv6 = ipv6,
                    Udp = random.Next(2) == 0,
                    Port = (ushort)(1000 + random.Next(3)), // sometimes two flows share a port
                    Mss = random.Next(4) == 0 ? random.Next(1, 16) : random.Next(100, 1400),
                    Sequence = (uint)random.NextInt64(0, 1L << 32),
                    Id = (ushort)random.Next(65536),
                    DontFragment = random.Next(3) != 0,
                    TcpOptions = 4 * random.Next(0, 4),
                    Ecn = (Ecn)random.Next(4),
                });
            }
            int batch = random.Next(1, 129);
            var packets = new byte[batch][];
            for (int i = 0; i < batch; i++)
            {
                packets[i] = NextPacket(random, flows[random.Next(flows.Count)]);
            }
            int maxLength = random.Next(4) == 0 ? random.Next(1000, 20000) : scratch.Length - VirtioNetHeader.Size;
            var buffers = OffloadPackets.ToBuffers(pool, packets);
            try
            {
                merged += CheckWritePath(buffers, packets, maxLength, scratch, $"seed {seed} iteration {iteration} maxLength {maxLength}");
            }
            finally
            {
                OffloadPackets.ReturnAll(buffers);
            }
        }
        Assert.Equal(0, pool.Outstanding);
        Assert.True(merged > 2000, $"only {merged} packets were merged");
    }

    private static byte[] NextPacket(Random random, Flow flow)
    {
        int payload = random.Next(8) == 0 ? random.Next(1, flow.Mss + 1) : flow.Mss;
        byte flags = Ack;
        var ecn = flow.Ecn;
        int ipv4Options = 0, extension = 0;
        bool breakChecksum = false;
        switch (random.Next(30))
        {
            case 0: flags |= Psh; break;
            case 1: ecn = Ecn.Ce; break;
            case 2: ecn = (Ecn)random.Next(4); flow.Ecn = ecn; break;
            case 3: flags |= Urg; break;
            case 4: flags |= Fin; break;
            case 5: flags |= Cwr; break;
            case 6: flags |= Ece; break;
            case 7: breakChecksum = true; break;
            case 8: ipv4Options = flow.Ipv6 ? 0 : 1; extension = flow.Ipv6 ? 8 : 0; break;
            case 9: payload = 0; break;
            case 10: flow.Sequence += 1; break; // a gap
            case 11: flow.DontFragment = !flow.DontFragment; break;
        }
        byte[] p = Build(flow.Ipv6, flow.Udp, flow.Port, flow.Sequence, payload, flags, ecn, flow.Id, flow.DontFragment, flow.TcpOptions, ipv4Options,
            extension, 0, out Shape shape, flow.Sequence);
        flow.Sequence += (uint)payload;
        flow.Id++;
        if (breakChecksum && p.Length > shape.HeaderLength)
        {
            p[^1] ^= 0x10;
        }
        switch (random.Next(40))
        {
            case 0: // truncated
                Array.Resize(ref p, random.Next(p.Length));
                break;
            case 1: // random bytes
                random.NextBytes(p);
                break;
            case 2: // another protocol, checksums fixed
                if (!flow.Ipv6)
                {
                    p[9] = 1;
                    WriteIpv4HeaderChecksum(p);
                }
                else
                {
                    p[6] = 58;
                }
                break;
            case 3: // a header byte changed, checksums fixed (a valid packet unlike its neighbours)
            {
                int at = random.Next(shape.HeaderLength);
                if (at != 0 && at != 2 && at != 3 && (flow.Ipv6 ? at is not (4 or 5 or 6) : at is not (9 or 10 or 11)) && at != shape.L4 + 12)
                {
                    p[at] = (byte)random.Next(256);
                    if (!flow.Ipv6)
                    {
                        WriteIpv4HeaderChecksum(p);
                    }
                    if (!(flow.Ipv6 && extension > 0))
                    {
                        WriteTransportChecksum(p, flow.Ipv6, shape.L4, flow.Udp ? Udp : Tcp);
                    }
                }
                break;
            }
        }
        return p;
    }

    private static int CheckWritePath(PacketBuffer[] buffers, byte[][] packets, int maxLength, byte[] scratch, string what)
    {
        int n = buffers.Length;
        var taken = new bool[n];
        var members = new int[n];
        var writtenAt = new int[n];
        Array.Fill(writtenAt, -1);
        int writes = 0;
        int merged = 0;
        for (int i = 0; i < n; i++)
        {
            if (taken[i])
            {
                continue;
            }
            bool udp = UdpCoalescer.IsUdp(buffers[i].Data);
            int run = udp
                ? UdpCoalescer.FindRun(buffers, i, taken, members, maxLength)
                : TcpCoalescer.FindRun(buffers, i, taken, members, maxLength);
            string runWhat = $"{what} run at {i} of {run} [{string.Join(",", members.AsSpan(0, run).ToArray())}]";
            Assert.True(run >= 1 && members[0] == i, runWhat);
            for (int k = 0; k < run; k++)
            {
                Assert.True(writtenAt[members[k]] < 0, "written twice: " + runWhat);
                Assert.True(k == 0 || members[k] > members[k - 1], "members out of order: " + runWhat);
                writtenAt[members[k]] = writes * 1000 + k;
            }
            writes++;
            if (run == 1)
            {
                continue;
            }
            merged += run;
            var runMembers = members.AsSpan(0, run).ToArray();
            string membersHex = string.Join(" ", runMembers.Select(m => Convert.ToHexString(packets[m])));
            int length = udp ? UdpCoalescer.Build(buffers, runMembers, scratch) : TcpCoalescer.Build(buffers, runMembers, scratch);
            Assert.True(length - VirtioNetHeader.Size <= maxLength, "too long: " + runWhat);
            Ecn ecn = EcnOf(packets[runMembers[0]]);
            foreach (int m in runMembers)
            {
                Assert.True(EcnOf(packets[m]) == ecn, "mixed ECN: " + runWhat + " " + membersHex);
                Assert.True(udp || ecn != Ecn.Ce, "CE TCP merged: " + runWhat + " " + membersHex);
            }
            Assert.True(!udp || run <= UdpCoalescer.MaxSegments, runWhat);
            var header = VirtioNetHeader.Read(scratch);
            byte[] super = scratch.AsSpan(VirtioNetHeader.Size, length - VirtioNetHeader.Size).ToArray();
            var segmenter = new GsoSegmenter();
            Assert.True(segmenter.Begin(super, header) == OffloadStatus.Ok, runWhat);
            Assert.True(segmenter.PendingSegments == run, $"segments {segmenter.PendingSegments}: {runWhat} {membersHex}");
            var segment = new byte[segmenter.MaxSegmentLength];
            foreach (int m in runMembers)
            {
                int segmentLength = segmenter.NextSegment(super, segment);
                byte[] member = packets[m];
                byte[] back = segment.AsSpan(0, segmentLength).ToArray();
                bool ipv6 = member[0] >> 4 == 6;
                int l4 = ipv6 ? 40 : 20;
                Assert.True(TransportValid(back, ipv6, l4, udp ? Udp : Tcp), $"member {m} checksum: {runWhat} {membersHex}");
                if (!ipv6)
                {
                    Assert.True(Ipv4HeaderValid(back), $"member {m} IPv4 checksum: {runWhat} {membersHex}");
                }
                if (!udp && (member[l4 + 13] & Urg) == 0)
                {
                    back[l4 + 18] = member[l4 + 18];
                    back[l4 + 19] = member[l4 + 19];
                    back[l4 + 16] = member[l4 + 16];
                    back[l4 + 17] = member[l4 + 17];
                }
                if (!ipv6 && (member[6] & 0x40) != 0)
                {
                    back[4] = member[4];
                    back[5] = member[5];
                    back[10] = member[10];
                    back[11] = member[11];
                }
                Assert.True(back.AsSpan().SequenceEqual(member),
                    $"member {m} came back as {Convert.ToHexString(back)}, was {Convert.ToHexString(member)}: {runWhat}");
            }
        }
        for (int i = 0; i < n; i++)
        {
            Assert.True(writtenAt[i] >= 0, $"packet {i} never written: {what}");
        }
        // No two packets of one flow (as this file's parser reads it) change order.
        var keys = packets.Select(FlowKey).ToArray();
        for (int i = 0; i < n; i++)
        {
            for (int j = i + 1; j < n; j++)
            {
                if (keys[i] is not null && keys[i] == keys[j])
                {
                    Assert.True(writtenAt[i] < writtenAt[j], $"packets {i} and {j} of flow {keys[i]} reordered: {what}");
                }
            }
        }
        return merged;
    }

    /// <summary>Protocol, addresses and ports, the transport header found past IPv4 options and IPv6 hop-by-hop headers; null when unreadable.</summary>
    private static string? FlowKey(byte[] p)
    {
        if (p.Length < 20)
        {
            return null;
        }
        int version = p[0] >> 4;
        int l4;
        byte protocol;
        string addresses;
        if (version == 4)
        {
            l4 = (p[0] & 0x0F) * 4;
            protocol = p[9];
            addresses = Convert.ToHexString(p, 12, 8);
        }
        else if (version == 6 && p.Length >= 40)
        {
            l4 = 40;
            protocol = p[6];
            addresses = Convert.ToHexString(p, 8, 32);
            while (protocol == 0 && p.Length >= l4 + 8)
            {
                protocol = p[l4];
                l4 += (p[l4 + 1] + 1) * 8;
            }
        }
        else
        {
            return null;
        }
        if (protocol is not (Tcp or Udp))
        {
            return $"{version}/{protocol}/{addresses}";
        }
        if (p.Length < l4 + 4)
        {
            return null;
        }
        return $"{version}/{protocol}/{addresses}/{Convert.ToHexString(p, l4, 4)}";
    }
}
