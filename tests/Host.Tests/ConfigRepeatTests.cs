using System.Globalization;
using Firezone.Actors.Host.Config;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Repeated sections and keys in a wg-quick file: wg-quick reads every [Interface] line, and wg
/// setconf applies the sections in order, so a second [Interface] adds to the first, a single-valued
/// key given again keeps the later value, a second [Peer] with the same PublicKey changes that peer
/// (its AllowedIPs replacing the earlier ones) and a prefix given to a second peer moves to it. The
/// files start as they do under wg-quick, each repeat with a warning that names both lines.
/// </summary>
public sealed class ConfigRepeatTests
{
    private static readonly string PrivateKey = ClampedKey();
    private static readonly string OtherPrivateKey = ClampedKey();
    private static readonly string KeyA = TestKeys.New().ToBase64();
    private static readonly string KeyB = TestKeys.New().ToBase64();
    private static readonly string Psk1 = TestKeys.New().ToBase64();
    private static readonly string Psk2 = TestKeys.New().ToBase64();

    /// <summary>The files the comparison with wg setconf runs; each is also checked on its own below.</summary>
    private static readonly string[] FileTexts =
    [
        // Interface keys twice, and a second [Interface].
        $"[Interface]\nPrivateKey = {OtherPrivateKey}\nListenPort = 51000\nFwMark = 3\nListenPort = 51001\n[Interface]\nPrivateKey = {PrivateKey}\nFwMark = 7\n",
        // The same peer in two sections: the second's AllowedIPs and Endpoint, the first's keepalive and preshared key.
        $"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {KeyA}\nPresharedKey = {Psk1}\nAllowedIPs = 10.0.0.1/32, 10.0.1.0/24\nEndpoint = 127.0.0.1:1000\nPersistentKeepalive = 5\n"
            + $"[Peer]\nPublicKey = {KeyB}\nAllowedIPs = 10.0.2.0/24\n[Peer]\nPublicKey = {KeyA}\nAllowedIPs = 10.0.0.2/32\nEndpoint = 127.0.0.1:2000\n",
        // A second section without AllowedIPs leaves the peer none.
        $"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {KeyA}\nAllowedIPs = 10.0.0.1/32\n[Peer]\nPublicKey = {KeyA}\nPresharedKey = {Psk2}\nPersistentKeepalive = off\n",
        // A prefix moves to the later peer, and back to the first with its third section.
        $"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {KeyA}\nAllowedIPs = 10.0.0.0/24, 10.0.5.0/24\n[Peer]\nPublicKey = {KeyB}\nAllowedIPs = 10.0.0.0/24, 10.0.6.0/24\n"
            + $"[Peer]\nPublicKey = {KeyB}\nAllowedIPs = 10.0.0.0/24, 10.0.7.0/24\n[Peer]\nPublicKey = {KeyA}\nAllowedIPs = 10.0.5.0/24, 10.0.0.0/24\n",
        // Keys twice within one [Peer], also PublicKey: the later value.
        $"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {KeyB}\nPublicKey = {KeyA}\nPresharedKey = {Psk1}\nPresharedKey = {Psk2}\nEndpoint = 127.0.0.1:1\nEndpoint = 127.0.0.1:3\n"
            + "PersistentKeepalive = 25\nPersistentKeepalive = 9\nAllowedIPs = 10.0.0.1/32\nAllowedIPs = 10.0.0.2/32, 10.0.0.1/32\n",
    ];

    public static TheoryData<int> Files() => new(Enumerable.Range(0, FileTexts.Length));

    /// <summary>A private key as wg genkey makes it: wireguard-go stores the clamped form (RFC 7748) and reports that.</summary>
    private static string ClampedKey()
    {
        byte[] key = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        key[0] &= 248;
        key[31] = (byte)((key[31] & 127) | 64);
        return Convert.ToBase64String(key);
    }

    private static TunnelConfig Parse(string text) => new WgQuickConfigParser().Parse("/etc/wg/wg0.conf", text);

    [Fact]
    public void Interface_keys_given_again_keep_the_later_value_and_a_second_Interface_adds_to_the_first()
    {
        var config = Parse($"[Interface]\nPrivateKey = {OtherPrivateKey}\nListenPort = 51000\nMTU = 1400\nTable = off\nAddress = 10.9.0.1/24\n"
            + $"[Interface]\nPrivateKey = {PrivateKey}\nListenPort = 51001\nMTU = 1380\nTable = 1234\nAddress = 10.9.0.2/24\n");
        Assert.Equal(PrivateKey, config.Interface.PrivateKey?.ToBase64());
        Assert.Equal((ushort)51001, config.Interface.ListenPort);
        Assert.Equal(9, config.Interface.ListenPortLine);
        Assert.Equal(1380, config.Interface.Mtu);
        Assert.Equal(RouteTable.Named("1234"), config.Interface.Table);
        Assert.Equal(["10.9.0.1/24", "10.9.0.2/24"], config.Interface.Addresses.Select(a => a.ToString()));
        Assert.Equal(
        [
            (7, "second [Interface] section (the first is on line 1): read as part of the first, as wg-quick and wg read it"),
            (8, "PrivateKey given twice in [Interface] (first on line 2): the later value counts, as in wg-quick and wg"),
            (9, "ListenPort given twice in [Interface] (first on line 3): the later value counts, as in wg-quick and wg"),
            (10, "MTU given twice in [Interface] (first on line 4): the later value counts, as in wg-quick and wg"),
            (11, "Table given twice in [Interface] (first on line 5): the later value counts, as in wg-quick and wg"),
        ], config.Notes.Select(n => (n.Line, n.Message)));
    }

    [Fact]
    public void A_second_section_for_a_peer_replaces_its_allowed_ips_and_the_keys_it_gives()
    {
        var config = Parse(FileTexts[1]);
        Assert.Equal([KeyA, KeyB], config.Peers.Select(p => p.PublicKey.ToBase64()));
        var a = config.Peers[0];
        Assert.Equal(["10.0.0.2/32"], a.AllowedIps.Select(p => p.ToString()));
        Assert.Equal("127.0.0.1:2000", a.Endpoint.ToIPEndPoint().ToString());
        Assert.Equal(5, a.PersistentKeepaliveSeconds);
        Assert.Equal(Psk1, a.PresharedKey?.ToBase64());
        Assert.Equal(["10.0.2.0/24"], config.Peers[1].AllowedIps.Select(p => p.ToString()));
        var note = Assert.Single(config.Notes);
        Assert.Equal(12, note.Line);
        Assert.Equal("this [Peer] has the same PublicKey as the [Peer] on line 3: both apply to one peer, as in wg setconf; "
            + "this section's AllowedIPs replace the earlier ones, and the keys it gives replace theirs", note.Message);
    }

    [Fact]
    public void A_second_section_without_allowed_ips_leaves_the_peer_none()
    {
        var peer = Assert.Single(Parse(FileTexts[2]).Peers);
        Assert.Empty(peer.AllowedIps);
        Assert.Equal(Psk2, peer.PresharedKey?.ToBase64());
        Assert.Equal(0, peer.PersistentKeepaliveSeconds);
    }

    [Fact]
    public void A_prefix_given_to_a_later_peer_moves_to_it_with_a_warning_naming_both_lines()
    {
        var config = Parse(FileTexts[3]);
        Assert.Equal(["10.0.5.0/24", "10.0.0.0/24"], config.Peers[0].AllowedIps.Select(p => p.ToString()));
        Assert.Equal(["10.0.7.0/24"], config.Peers[1].AllowedIps.Select(p => p.ToString()));
        Assert.Contains(config.Notes, n => n.Line == 8 && n.Message == "AllowedIPs 10.0.0.0/24 is also on the [Peer] on line 3 (line 5): it moves to this one, as in wg setconf");
        Assert.Contains(config.Notes, n => n.Line == 14 && n.Message == "AllowedIPs 10.0.0.0/24 is also on the [Peer] on line 9 (line 11): it moves to this one, as in wg setconf");
    }

    [Fact]
    public void Keys_given_twice_in_one_peer_keep_the_later_value()
    {
        var config = Parse(FileTexts[4]);
        var peer = Assert.Single(config.Peers);
        Assert.Equal(KeyA, peer.PublicKey.ToBase64());
        Assert.Equal(Psk2, peer.PresharedKey?.ToBase64());
        Assert.Equal("127.0.0.1:3", peer.Endpoint.ToIPEndPoint().ToString());
        Assert.Equal(9, peer.PersistentKeepaliveSeconds);
        Assert.Equal(["10.0.0.1/32", "10.0.0.2/32"], peer.AllowedIps.Select(p => p.ToString()));
        Assert.Equal([5, 7, 9, 11], config.Notes.Select(n => n.Line));
        Assert.All(config.Notes, n => Assert.EndsWith("the later value counts, as in wg-quick and wg", n.Message, StringComparison.Ordinal));
    }

    /// <summary>
    /// The file as wg-quick hands it to wg (`wg-quick strip`, then `wg setconf`) into Debian's
    /// wireguard-go, against what our parser makes of it: the same device and peers.
    /// </summary>
    [Theory]
    [MemberData(nameof(Files))]
    public async Task A_file_with_repeats_configures_what_wg_setconf_configures_from_it(int file)
    {
        string text = FileTexts[file];
        string directory = Directory.CreateTempSubdirectory("fz-repeat-").FullName;
        try
        {
            string path = Path.Combine(directory, "wg0.conf");
            File.WriteAllText(path, text);
            var strip = await ProcessRunner.RunAsync("wg-quick", ["strip", path], timeout: TimeSpan.FromSeconds(15));
            Assert.True(strip.ExitCode == 0, strip.Stderr);
            string stripped = Path.Combine(directory, "stripped.conf");
            File.WriteAllText(stripped, strip.Stdout);
            await using var go = await WireGuardGoUapi.StartAsync();
            var set = await ProcessRunner.RunAsync("wg", ["setconf", go.Name, stripped], timeout: TimeSpan.FromSeconds(15));
            Assert.True(set.ExitCode == 0, set.Stderr);
            var ours = new WgQuickConfigParser().ParseFile(path);
            string theirs = Canonical(UapiRawClient.Exchange(go.SocketPath, "get=1\n\n"), withPort: ours.Interface.ListenPort is not null);
            Assert.Equal(theirs, Canonical(ours));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// Private key, listen port (when the file gives one; else wireguard-go picks one), fwmark and
    /// each peer (sorted by key) with its allowed IPs sorted, from a UAPI get reply.
    /// </summary>
    private static string Canonical(string reply, bool withPort)
    {
        string device = "", fwmark = "0", port = "";
        var peers = new List<List<string>>();
        foreach (string line in reply.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int equals = line.IndexOf('=');
            string key = line[..equals], value = line[(equals + 1)..];
            switch (key)
            {
                case "private_key": device = value; break;
                case "fwmark": fwmark = value; break;
                case "listen_port" when withPort: port = value; break;
                case "public_key": peers.Add(["public_key=" + value]); break;
                case "preshared_key" when value != new string('0', 64):
                case "endpoint":
                case "allowed_ip":
                    peers[^1].Add(key + "=" + value);
                    break;
                case "persistent_keepalive_interval" when value != "0":
                    peers[^1].Add(key + "=" + value);
                    break;
            }
        }
        return Join(device, port, fwmark, peers);
    }

    private static string Canonical(TunnelConfig config)
    {
        var peers = config.Peers.Select(p =>
        {
            var lines = new List<string> { "public_key=" + p.PublicKey.ToHex() };
            if (p.PresharedKey is { } psk)
            {
                lines.Add("preshared_key=" + psk.ToHex());
            }
            if (!p.Endpoint.IsNone)
            {
                lines.Add("endpoint=" + p.Endpoint.ToIPEndPoint());
            }
            lines.AddRange(p.AllowedIps.Select(prefix => "allowed_ip=" + prefix));
            if (p.PersistentKeepaliveSeconds != 0)
            {
                lines.Add("persistent_keepalive_interval=" + p.PersistentKeepaliveSeconds.ToString(CultureInfo.InvariantCulture));
            }
            return lines;
        }).ToList();
        return Join(config.Interface.PrivateKey?.ToHex() ?? "", config.Interface.ListenPort?.ToString(CultureInfo.InvariantCulture) ?? "", (config.Interface.FwMark ?? 0).ToString(CultureInfo.InvariantCulture), peers);
    }

    private static string Join(string device, string port, string fwmark, List<List<string>> peers) =>
        $"private_key={device}\nlisten_port={port}\nfwmark={fwmark}\n" + string.Join("\n", peers
            .Select(p => p[0] + "\n" + string.Join("\n", p.Skip(1).Order(StringComparer.Ordinal)))
            .Order(StringComparer.Ordinal));
}
