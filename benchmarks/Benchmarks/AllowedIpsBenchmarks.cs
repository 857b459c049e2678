using System.Net;
using BenchmarkDotNet.Attributes;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// Cryptokey routing lookups (whitepaper section 2) in a table of 10,000 peers, each with one /32 and
/// one /128, plus the default routes a client adds; and building that table from scratch.
/// Each lookup benchmark resolves <see cref="Batch"/> addresses spread over the table, so the figure
/// per operation divided by Batch is the cost of one lookup.
/// </summary>
[MemoryDiagnoser]
public class AllowedIpsBenchmarks
{
    public const int Peers = 10_000;
    public const int Batch = 1024;

    private readonly AllowedIps<WireGuardKey> _table = new();
    private readonly byte[][] _ipv4 = new byte[Batch][];
    private readonly byte[][] _ipv6 = new byte[Batch][];
    private readonly byte[][] _ipv4Miss = new byte[Batch][];
    private readonly IpPrefix[] _prefixes = new IpPrefix[2 * Peers];
    private readonly WireGuardKey[] _keys = new WireGuardKey[Peers];

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        var keyBytes = new byte[WireGuardKey.Size];
        for (int peer = 0; peer < Peers; peer++)
        {
            random.NextBytes(keyBytes);
            _keys[peer] = new WireGuardKey(keyBytes);
            _prefixes[2 * peer] = IpPrefix.Create(Ipv4Of(peer), 32);
            _prefixes[2 * peer + 1] = IpPrefix.Create(Ipv6Of(peer), 128);
        }
        for (int i = 0; i < _prefixes.Length; i++)
        {
            _table.Insert(_prefixes[i], _keys[i / 2]);
        }
        // A client's catch-all routes: a miss inside 100.64/10 or fd00:2021::/48 falls back to them.
        _table.Insert(IpPrefix.Parse("100.64.0.0/10"), _keys[0]);
        _table.Insert(IpPrefix.Parse("fd00:2021::/48"), _keys[0]);
        for (int i = 0; i < Batch; i++)
        {
            int peer = random.Next(Peers);
            _ipv4[i] = Ipv4Of(peer).GetAddressBytes();
            _ipv6[i] = Ipv6Of(peer).GetAddressBytes();
            _ipv4Miss[i] = [198, 51, (byte)random.Next(256), (byte)random.Next(256)];
        }
    }

    private static IPAddress Ipv4Of(int peer) => new([100, (byte)(64 + (peer >> 16)), (byte)(peer >> 8), (byte)peer]);

    private static IPAddress Ipv6Of(int peer) => IPAddress.Parse($"fd00:2021::{peer >> 16:x}:{peer & 0xFFFF:x}");

    [Benchmark(OperationsPerInvoke = Batch)]
    public int LookupIpv4()
    {
        int found = 0;
        foreach (var address in _ipv4)
        {
            found += _table.TryLookup(address, out _) ? 1 : 0;
        }
        return found;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int LookupIpv6()
    {
        int found = 0;
        foreach (var address in _ipv6)
        {
            found += _table.TryLookup(address, out _) ? 1 : 0;
        }
        return found;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int LookupIpv4Miss()
    {
        int found = 0;
        foreach (var address in _ipv4Miss)
        {
            found += _table.TryLookup(address, out _) ? 1 : 0;
        }
        return found;
    }

    /// <summary>Building the 20,000-prefix table from nothing (one operation = the whole table).</summary>
    [Benchmark]
    public int Insert20000()
    {
        var table = new AllowedIps<WireGuardKey>();
        for (int i = 0; i < _prefixes.Length; i++)
        {
            table.Insert(_prefixes[i], _keys[i / 2]);
        }
        return table.Count;
    }
}
