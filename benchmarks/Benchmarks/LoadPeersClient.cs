using System.Net;
using System.Net.Sockets;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// One Client of <see cref="LoadPeers"/> as its keys file gives it: a line "PRIVATE-KEY-BASE64
/// TUNNEL-ADDRESS" (blank lines skipped), and its own UDP port, the base port plus its place in the file.
/// </summary>
public sealed record LoadPeersClient(WireGuardKey PrivateKey, IPAddress TunnelAddress, int ListenPort)
{
    /// <summary>
    /// Every Client of <paramref name="keysFile"/>; a line it cannot use is an <see cref="ArgumentException"/>
    /// naming the file and line. Keys and addresses must differ: two Clients with one key are one peer to
    /// the Gateway (roaming between two ports), two with one address one source.
    /// </summary>
    public static IReadOnlyList<LoadPeersClient> ReadAll(string keysFile, int basePort)
    {
        var clients = new List<LoadPeersClient>();
        var keyLines = new Dictionary<WireGuardKey, int>();
        var addressLines = new Dictionary<IPAddress, int>();
        var lines = File.ReadAllLines(keysFile);
        for (int i = 0; i < lines.Length; i++)
        {
            string[] fields = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (fields.Length == 0)
            {
                continue;
            }
            string at = $"load-peers: {keysFile}:{i + 1}: ";
            if (fields.Length != 2)
            {
                throw new ArgumentException(at + "expected \"PRIVATE-KEY-BASE64 TUNNEL-ADDRESS\"");
            }
            if (!WireGuardKey.TryParseBase64(fields[0], out var key))
            {
                throw new ArgumentException(at + "the private key is not a base64 key of 32 bytes");
            }
            if (!IPAddress.TryParse(fields[1], out var address) || address.AddressFamily != AddressFamily.InterNetwork)
            {
                throw new ArgumentException(at + $"{fields[1]}: expected an IPv4 tunnel address (the packets are IPv4)");
            }
            if (keyLines.TryGetValue(key, out int first) || addressLines.TryGetValue(address, out first))
            {
                throw new ArgumentException(at + $"the same {(keyLines.ContainsKey(key) ? "key" : "tunnel address")} as line {first}: each Client needs its own");
            }
            if (basePort + clients.Count > 65535)
            {
                throw new ArgumentException(at + $"port {basePort + clients.Count} is past 65535 (--base-port {basePort} plus one port per Client)");
            }
            keyLines[key] = i + 1;
            addressLines[address] = i + 1;
            clients.Add(new LoadPeersClient(key, address, basePort + clients.Count));
        }
        return clients.Count > 0
            ? clients
            : throw new ArgumentException($"load-peers: {keysFile}: no Clients (lines \"PRIVATE-KEY-BASE64 TUNNEL-ADDRESS\")");
    }
}
