using BenchmarkDotNet.Attributes;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Offload;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// TUN offload work per 64 KiB: splitting one TSO super-packet (IPv4, MSS 1380) into 48 segments with
/// full checksums, and merging those 48 segments back into one super-packet (checksums verified);
/// the same merge for 46 UDP datagrams of 1392 bytes (USO, as iperf3's UDP test sends them);
/// and the bare RFC 1071 sum over one MSS-sized payload (1460 bytes) and one 64 KiB super-packet.
/// </summary>
[MemoryDiagnoser]
public class OffloadBenchmarks
{
    private const int Mss = 1380;
    private readonly byte[] _super = new byte[20 + 20 + 65495];
    private readonly GsoSegmenter _segmenter = new();
    private readonly PacketBufferPool _pool = new(preallocate: 64);
    private readonly byte[] _payload = new byte[64 * 1024 + 1];
    private readonly byte[] _scratch = new byte[128 * 1024];
    private readonly bool[] _taken = new bool[64];
    private readonly int[] _members = new int[64];
    private VirtioNetHeader _header;
    private PacketBuffer[] _segments = [];
    private PacketBuffer[] _datagrams = [];

    [GlobalSetup]
    public void Setup()
    {
        WriteIpv4Header(_super, protocol: 6);
        _super[32] = 5 << 4;
        _super[33] = 0x10; // ACK
        new Random(1).NextBytes(_super.AsSpan(40));
        new Random(2).NextBytes(_payload);
        _header = new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum, GsoType = VirtioNetHeader.GsoTcpV4, HdrLen = 40, GsoSize = Mss, CsumStart = 20, CsumOffset = 16,
        };
        _segmenter.Begin(_super, _header);
        _segments = new PacketBuffer[_segmenter.PendingSegments];
        for (int i = 0; i < _segments.Length; i++)
        {
            _segments[i] = _pool.Rent();
            int length = _segmenter.NextSegment(_super, _segments[i].Memory[PacketBuffer.Headroom..]);
            _segments[i].SetData(PacketBuffer.Headroom, length);
        }
        if (TcpCoalescer.FindRun(_segments, 0, _taken, _members, 65535) != _segments.Length)
        {
            throw new InvalidOperationException("setup: the segments do not merge back");
        }
        _ = Ipv4Checksum.Compute(_super.AsSpan(0, 20));
        _datagrams = SplitUso(datagrams: 46, size: 1392);
        _taken.AsSpan().Clear();
        if (UdpCoalescer.FindRun(_datagrams, 0, _taken, _members, 65535) != _datagrams.Length)
        {
            throw new InvalidOperationException("setup: the datagrams do not merge back");
        }
    }

    /// <summary>IPv4 from 10.0.0.1 to 10.0.0.2, ECT(0), DF, TTL 64, total length = the array's (header checksum left 0: segmentation writes it).</summary>
    private static void WriteIpv4Header(byte[] packet, byte protocol)
    {
        packet[0] = 0x45;
        packet[1] = 0x02; // ECT(0)
        packet[2] = (byte)(packet.Length >> 8);
        packet[3] = (byte)packet.Length;
        packet[6] = 0x40;
        packet[8] = 64;
        packet[9] = protocol;
        packet[12] = 10;
        packet[15] = 1;
        packet[16] = 10;
        packet[19] = 2;
    }

    /// <summary>One USO super-packet (IPv4, ECT(0)) split into datagrams with full checksums, as the read path does.</summary>
    private PacketBuffer[] SplitUso(int datagrams, int size)
    {
        var super = new byte[20 + 8 + datagrams * size];
        WriteIpv4Header(super, protocol: 17);
        super[20] = 0x9C; // source port 40000
        super[21] = 0x40;
        super[23] = 53;
        super[24] = (byte)((super.Length - 20) >> 8);
        super[25] = (byte)(super.Length - 20);
        new Random(3).NextBytes(super.AsSpan(28));
        ushort partial = InternetChecksum.PseudoHeaderSum(super.AsSpan(12, 4), super.AsSpan(16, 4), 17, super.Length - 20);
        super[26] = (byte)(partial >> 8);
        super[27] = (byte)partial;
        var header = new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum, GsoType = VirtioNetHeader.GsoUdpL4, HdrLen = 28, GsoSize = (ushort)size, CsumStart = 20, CsumOffset = 6,
        };
        var segmenter = new GsoSegmenter();
        if (segmenter.Begin(super, header) != OffloadStatus.Ok)
        {
            throw new InvalidOperationException("setup: the USO super-packet does not split");
        }
        var buffers = new PacketBuffer[segmenter.PendingSegments];
        for (int i = 0; i < buffers.Length; i++)
        {
            buffers[i] = _pool.Rent();
            int length = segmenter.NextSegment(super, buffers[i].Memory[PacketBuffer.Headroom..]);
            buffers[i].SetData(PacketBuffer.Headroom, length);
        }
        return buffers;
    }

    [Benchmark]
    public ushort Checksum1460() => InternetChecksum.Sum(_payload.AsSpan(0, 1460));

    [Benchmark]
    public ushort Checksum64K() => InternetChecksum.Sum(_payload.AsSpan(0, 64 * 1024));

    [Benchmark]
    public int SegmentTso64K()
    {
        _segmenter.Begin(_super, _header);
        int total = 0;
        for (int i = 0; _segmenter.HasPending; i++)
        {
            total += _segmenter.NextSegment(_super, _segments[i].Memory[PacketBuffer.Headroom..]);
        }
        return total;
    }

    [Benchmark]
    public int Coalesce64K()
    {
        _taken.AsSpan().Clear();
        int run = TcpCoalescer.FindRun(_segments, 0, _taken, _members, 65535);
        return TcpCoalescer.Build(_segments, _members.AsSpan(0, run), _scratch);
    }

    [Benchmark]
    public int CoalesceUdp64K()
    {
        _taken.AsSpan().Clear();
        int run = UdpCoalescer.FindRun(_datagrams, 0, _taken, _members, 65535);
        return UdpCoalescer.Build(_datagrams, _members.AsSpan(0, run), _scratch);
    }
}
