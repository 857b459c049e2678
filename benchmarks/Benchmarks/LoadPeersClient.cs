using System.Net;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// One Client of <see cref="LoadPeers"/> as its keys file gives it: a line "PRIVATE-KEY-BASE64
/// TUNNEL-ADDRESS" (blank lines skipped), and its own UDP port, the base port plus its place in the file.
/// </summary>
public sealed record LoadPeersClient(WireGuardKey PrivateKey, IPAddress TunnelAddress, int ListenPort)
{
    public static IReadOnlyList<LoadPeersClient> ReadAll(string keysFile, int basePort)
    {
        var clients = new List<LoadPeersClient>();
        var lines = File.ReadAllLines(keysFile).Where(l => l.Trim().Length > 0).ToArray();
        for (int i = 0; i < lines.Length; i++)
        {
            string[] fields = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != 2)
            {
                throw new FormatException($"{keysFile}:{i + 1}: expected \"PRIVATE-KEY-BASE64 TUNNEL-ADDRESS\"");
            }
            clients.Add(new LoadPeersClient(new WireGuardKey(Convert.FromBase64String(fields[0])), IPAddress.Parse(fields[1]), basePort + i));
        }
        return clients;
    }
}
