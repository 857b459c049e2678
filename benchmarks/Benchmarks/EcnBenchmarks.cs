using BenchmarkDotNet.Attributes;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Benchmarks;

/// <summary>ECN copy-out (RFC 6040 section 4.2 plus the RFC 1624 checksum patch) on one header.</summary>
[MemoryDiagnoser]
public class EcnBenchmarks
{
    private readonly byte[] _ipv4 = new byte[1420];
    private readonly byte[] _ipv6 = new byte[1420];

    [GlobalSetup]
    public void Setup()
    {
        _ipv4[0] = 0x45;
        _ipv4[1] = (byte)Ecn.Ect0;
        _ipv4[2] = 1420 >> 8;
        _ipv4[3] = 1420 & 0xFF;
        _ipv4[8] = 64;
        _ipv4[9] = 6;
        var checksum = Ipv4Checksum.Compute(_ipv4.AsSpan(0, 20));
        _ipv4[10] = (byte)(checksum >> 8);
        _ipv4[11] = (byte)checksum;
        _ipv6[0] = 0x60;
        _ipv6[1] = (byte)Ecn.Ect0 << 4;
        _ipv6[4] = (1420 - 40) >> 8;
        _ipv6[5] = (1420 - 40) & 0xFF;
    }

    // Alternating the outer codepoint makes every call a real rewrite (ECT(0) -> CE -> ... would stick at CE).
    private bool _flip;

    [Benchmark]
    public EcnVerdict CopyOutIpv4()
    {
        _flip = !_flip;
        _ipv4[1] = (byte)Ecn.Ect0;
        return IpPacket.ApplyDecapsulation(_ipv4, _flip ? Ecn.Ce : Ecn.Ect1, out _).Verdict;
    }

    [Benchmark]
    public EcnVerdict CopyOutIpv6()
    {
        _flip = !_flip;
        _ipv6[1] = (byte)Ecn.Ect0 << 4;
        return IpPacket.ApplyDecapsulation(_ipv6, _flip ? Ecn.Ce : Ecn.Ect1, out _).Verdict;
    }
}
