using System.Globalization;

namespace Firezone.Actors.EndToEnd.Tests.Harness;

/// <summary>
/// The lab's nftables counters at one moment (`lab.sh counters`): on the router, the outer ECN of
/// tunnel datagrams per direction before ("sent_") and after ("fwd_") the congestion chain, and
/// handshake initiations ("hsinit_"); in the client and gateway namespaces, the inner ECN of packets
/// arriving from the TUN ("tun_PROTO_ECN").
/// </summary>
public sealed class CounterSnapshot
{
    private readonly Dictionary<string, long> _values;

    private CounterSnapshot(Dictionary<string, long> values) => _values = values;

    public static CounterSnapshot Parse(string text)
    {
        var values = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = line.Split(' ');
            values[fields[0]] = long.Parse(fields[1], CultureInfo.InvariantCulture);
        }
        return new CounterSnapshot(values);
    }

    public long this[string name] => _values.TryGetValue(name, out var v)
        ? v
        : throw new KeyNotFoundException($"no lab counter '{name}' (have: {string.Join(", ", _values.Keys)})");

    /// <summary>How much `name` grew since `earlier`.</summary>
    public long Since(CounterSnapshot earlier, string name) => this[name] - earlier[name];

    /// <summary>Outer datagrams counted on the router, direction "c2g" or "g2c", stage "sent" or "fwd", ECN "notect|ect0|ect1|ce".</summary>
    public static string Outer(string stage, string direction, string ecn) => $"router.{stage}_{direction}_{ecn}";

    /// <summary>Inner packets arriving from ROLE's TUN, protocol "tcp|udp|icmp".</summary>
    public static string Inner(string role, string protocol, string ecn) => $"{role}.tun_{protocol}_{ecn}";

    public static string HandshakeInitiations(string direction) => $"router.hsinit_{direction}";

    public override string ToString() => string.Join(", ", _values.Where(kv => kv.Value != 0).Select(kv => $"{kv.Key}={kv.Value}"));
}
