using System.Globalization;
using System.Net;

namespace Firezone.Actors.Benchmarks;

/// <summary>The command line of <see cref="LoadPeers"/>: `load-peers --name value ...` (args[0] is the verb).</summary>
public sealed record LoadPeersOptions(IPEndPoint Endpoint, string GatewayKey, string KeysFile, int BasePort, IPAddress Destination,
    int Port, double Seconds, int Mtu, int Burst)
{
    public static LoadPeersOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>();
        for (int i = 1; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"load-peers: {args[i]}: expected --name value");
            }
            values[args[i][2..]] = args[++i];
        }
        string Required(string name) => values.TryGetValue(name, out var v) ? v : throw new ArgumentException($"load-peers: --{name} is required");
        int Int(string name, int fallback) => values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        return new LoadPeersOptions(IPEndPoint.Parse(Required("endpoint")), Required("gateway-key"), Required("keys"), int.Parse(Required("base-port"), CultureInfo.InvariantCulture),
            IPAddress.Parse(Required("destination")), Int("port", 9),
            values.TryGetValue("seconds", out var s) ? double.Parse(s, CultureInfo.InvariantCulture) : 10, Int("mtu", 1420), Int("burst", 32));
    }
}
