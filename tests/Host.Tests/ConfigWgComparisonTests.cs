using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Firezone.Actors.Host.Config;

namespace Firezone.Actors.Host.Tests;

/// <summary>A valid file with lines wg(8) may or may not take added to its sections.</summary>
public sealed record EdgyFile(string[] Lines)
{
    public string Text => string.Join('\n', Lines) + "\n";

    public override string ToString() => string.Join('\n', Lines);
}

public static class EdgyGenerators
{
    /// <summary>
    /// Lines at the edge of what wg-quick and wg(8) accept, with their section. Left out, as known
    /// differences: "ListenPort = +5" and "Endpoint = 192.0.2.1:+5" (wg reads ports with
    /// getaddrinfo, which takes a sign and cuts "65536" to port 0) and "Endpoint = 192.0.2.1:0" (a
    /// typo we refuse, see EndpointText). A UDP service name as the port ("domain") is taken by both.
    /// </summary>
    public static readonly (string Line, string Section)[] Edges =
    [
        ("ListenPort = 0x10", "Interface"), ("ListenPort = 51 820", "Interface"), ("ListenPort =", "Interface"),
        ("FwMark = 0X10", "Interface"), ("FwMark = 010", "Interface"), ("FwMark = 0x", "Interface"), ("FwMark = OFF", "Interface"), ("FwMark = 0x1 0", "Interface"),
        ("MTU = 1420", "Interface"), ("Table = vpn", "Interface"), ("Table = 0x10", "Interface"), ("Table = 010", "Interface"), ("DNS =", "Interface"), ("PostUp =", "Interface"), ("MTU =", "Interface"), ("Table =", "Interface"),
        ("Address = 10.9.0.1/24,", "Interface"), ("Address = ,10.9.0.1/24", "Interface"), ("Address = 10.9.0.1/24 fd09::1/64", "Interface"),
        ("PersistentKeepalive = 025", "Peer"), ("PersistentKeepalive = OFF", "Peer"), ("PersistentKeepalive = 2 5", "Peer"), ("PersistentKeepalive =", "Peer"),
        ("AllowedIPs = 10.200.0.0 / 16", "Peer"), ("AllowedIPs = 10.201.0.0/16,", "Peer"), ("AllowedIPs = ,10.202.0.0/16", "Peer"), ("AllowedIPs = 10.203.0.0/016", "Peer"),
        ("AllowedIPs = 10.204.0.0/+16", "Peer"), ("AllowedIPs = 10.205.0.1", "Peer"), ("AllowedIPs = FD20::/16", "Peer"), ("AllowedIPs = 10.206.0.0/16 10.207.0.0/16", "Peer"),
        ("AllowedIPs = 1.2.3/32", "Peer"), ("AllowedIPs = 10.208.0.0/33", "Peer"), ("AllowedIPs = 0x0a.209.0.0/16", "Peer"),
        ("Endpoint = 192.0.2.1 : 51820", "Peer"), ("Endpoint = [2001:db8::1] : 5", "Peer"), ("Endpoint = 192.0.2.1:051820", "Peer"),
        ("Endpoint = 1.2.3:5", "Peer"), ("Endpoint = 010.0.0.1:5", "Peer"), ("Endpoint = [::1]:5", "Peer"), ("Endpoint = 2001:db8::1:51820", "Peer"),
        ("Endpoint = localhost:51820", "Peer"), ("Endpoint = 192.0.2.1:http", "Peer"), ("Endpoint = 192.0.2.1:domain", "Peer"), ("ListenPort = domain", "Interface"),
        ("PresharedKey = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE", "Peer"), ("PresharedKey = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopV=", "Peer"),
        ("PresharedKey = FpCyhws9 cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=", "Peer"), ("Preshared Key = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=", "Peer"),
        ("PresharedKey = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=  # psk", "Peer"),
    ];

    public static Arbitrary<EdgyFile> Files() =>
        (from lines in ConfigGenerators.ValidLines
         from count in Gen.Choose(0, 2)
         from edges in Gen.Elements(Edges).ArrayOf(count)
         from at in Gen.Choose(0, 1000).ArrayOf(count)
         select new EdgyFile(Insert(lines, edges, at))).ToArbitrary();

    private static string[] Insert(string[] lines, (string Line, string Section)[] edges, int[] at)
    {
        var list = lines.ToList();
        for (int e = 0; e < edges.Length; e++)
        {
            var places = new List<int>();
            string? section = null;
            for (int i = 0; i < list.Count; i++)
            {
                string trimmed = list[i].Trim();
                if (trimmed.StartsWith('['))
                {
                    section = trimmed[1..trimmed.IndexOf(']')];
                }
                if (string.Equals(section, edges[e].Section, StringComparison.OrdinalIgnoreCase))
                {
                    places.Add(i + 1);
                }
            }
            if (places.Count > 0)
            {
                list.Insert(places[at[e] % places.Count], edges[e].Line);
            }
        }
        return [.. list];
    }
}

/// <summary>
/// Differential test against wireguard-tools: a file that `wg-quick strip` and `wg setconf` (its
/// parser; the device does not exist, so nothing is set) accept, we accept too, except where we
/// refuse on purpose (see <see cref="RefusedOnPurpose"/>).
/// </summary>
public sealed class ConfigWgComparisonTests
{
    // A fixed seed: CI runs the same cases each time (a divergence from an outside tool found at
    // random would fail one run in many and lose it). New seeds are explored by hand: drop Replay.
    [Property(MaxTest = 150, Arbitrary = [typeof(EdgyGenerators)], Replay = "(1609125011,1442695041)")]
    public Property A_file_wg_accepts_we_accept(EdgyFile file)
    {
        string directory = Directory.CreateTempSubdirectory("fzcfg").FullName;
        try
        {
            File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            string path = Path.Combine(directory, "fzq0.conf");
            File.WriteAllText(path, file.Text);
            bool wgAccepts = WgAccepts(path, directory, out string wgSays);
            string? ours = null;
            try
            {
                new WgQuickConfigParser(new LiteralResolver(), new RouteTableNames(["vpn"])).ParseFile(path);
            }
            catch (ConfigException e)
            {
                ours = e.Problem;
            }
            return (!wgAccepts || ours is null || RefusedOnPurpose(ours)).Label($"wg: {wgSays}; ours: {ours}");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>wg retries a failed name lookup for 15 s by default; the files name no host that needs one.</summary>
    private static readonly Dictionary<string, string> NoRetries = new() { ["WG_ENDPOINT_RESOLUTION_RETRIES"] = "0" };

    private static bool WgAccepts(string path, string directory, out string says)
    {
        var strip = ProcessRunner.RunAsync("wg-quick", ["strip", path], timeout: TimeSpan.FromSeconds(15)).GetAwaiter().GetResult();
        if (strip.ExitCode != 0)
        {
            says = "strip: " + strip.Stderr.Trim();
            return false;
        }
        string stripped = Path.Combine(directory, "stripped.conf");
        File.WriteAllText(stripped, strip.Stdout);
        // No such device: wg parses the whole file first and only then fails to reach the device.
        var set = ProcessRunner.RunAsync("wg", ["setconf", "fzqnodev0", stripped], environment: NoRetries, timeout: TimeSpan.FromSeconds(15)).GetAwaiter().GetResult();
        says = set.Stderr.Trim().Replace('\n', ' ');
        return !set.Stderr.Contains("Configuration parsing error", StringComparison.Ordinal);
    }

    /// <summary>
    /// The one deliberate refusal (README, "As a service"): the same Address twice, which `wg-quick
    /// strip` and `wg setconf` never look at but `wg-quick up` fails on (ip address add: File exists)
    /// after the interface exists.
    /// </summary>
    private static bool RefusedOnPurpose(string problem) =>
        problem.StartsWith("Address ", StringComparison.Ordinal) && problem.Contains(" is given twice (first on line ", StringComparison.Ordinal);

    private sealed class LiteralResolver : IHostNameResolver
    {
        public IReadOnlyList<System.Net.IPAddress> Resolve(string host) =>
            host == "localhost" ? [System.Net.IPAddress.Loopback] : System.Net.IPAddress.TryParse(host, out var address) ? [address] : [];
    }
}
