using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// The command line of <see cref="LoadPeers"/>: `load-peers --name value ...` (args[0] is the verb).
/// A value it cannot use as given is refused here, with an <see cref="ArgumentException"/> whose
/// message names the option, before any socket is opened; none is changed into another (an IPv6
/// address would be written into the IPv4 packet as 0.0.0.0, port 70000 cast to 4464, a misspelt
/// option left at its default).
/// </summary>
public sealed record LoadPeersOptions(IPEndPoint Endpoint, string GatewayKey, string KeysFile, int BasePort, IPAddress Destination,
    int Port, double Seconds, int Mtu, int Burst, double HandshakeSeconds = 20)
{
    /// <summary>An IPv4 and a UDP header.</summary>
    public const int MinMtu = 28;

    /// <summary>What one packet buffer of the generator's pool holds: the rest of it is headroom and tailroom (transport header, padding, tag).</summary>
    public const int MaxMtu = PacketBufferPool.DefaultBufferSize - PacketBuffer.Headroom - PacketBuffer.Tailroom;

    /// <summary>One sendmmsg takes at most UIO_MAXIOV iovecs (<see cref="Native.LinuxUdpSocket"/> refuses a larger batch).</summary>
    public const int MaxBurst = 1024;

    private static readonly string[] Names = ["endpoint", "gateway-key", "keys", "base-port", "destination", "port", "seconds", "mtu", "burst", "handshake-seconds"];

    public static LoadPeersOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>();
        for (int i = 1; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"load-peers: {args[i]}: expected --name value");
            }
            string name = args[i][2..];
            if (!Names.Contains(name))
            {
                throw new ArgumentException($"load-peers: {args[i]}: unknown option (known: --{string.Join(", --", Names)})");
            }
            values[name] = args[++i];
        }
        string Required(string name) => values.TryGetValue(name, out var v) ? v : throw new ArgumentException($"load-peers: --{name} is required");
        ArgumentException Bad(string name, string expected) => new($"load-peers: --{name} {values[name]}: expected {expected}");
        int Int(string name, int? fallback, int min, int max)
        {
            if (!values.ContainsKey(name) && fallback is { } value)
            {
                return value;
            }
            string text = Required(name);
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= min && v <= max
                ? v
                : throw Bad(name, $"a whole number from {min} to {max}");
        }
        IPAddress Ipv4(string name) =>
            IPAddress.TryParse(Required(name), out var a) && a.AddressFamily == AddressFamily.InterNetwork ? a : throw Bad(name, "an IPv4 address (the packets are IPv4)");

        var endpoint = IPEndPoint.TryParse(Required("endpoint"), out var e) && e.AddressFamily == AddressFamily.InterNetwork && e.Port != 0
            ? e
            : throw Bad("endpoint", "IPV4-ADDRESS:PORT (the Clients' sockets are IPv4)");
        string gatewayKey = WireGuardKey.TryParseBase64(Required("gateway-key"), out _) ? values["gateway-key"] : throw Bad("gateway-key", "a base64 key of 32 bytes");
        string keys = Required("keys");
        int basePort = Int("base-port", null, 1, 65535);
        var destination = Ipv4("destination");
        int port = Int("port", 9, 1, 65535);
        double Seconds(string name, double fallback)
        {
            if (!values.TryGetValue(name, out var text))
            {
                return fallback;
            }
            return double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) && v > 0 && v <= 86400
                ? v
                : throw Bad(name, "a number of seconds above 0 (at most 86400)");
        }
        return new LoadPeersOptions(endpoint, gatewayKey, keys, basePort, destination, port, Seconds("seconds", 10),
            Int("mtu", 1420, MinMtu, MaxMtu), Int("burst", 32, 1, MaxBurst), Seconds("handshake-seconds", 20));
    }
}
