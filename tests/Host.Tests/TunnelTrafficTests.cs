using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The composed daemon carries traffic: firezone-tunnel in one namespace, Debian's wireguard-go in
/// another, joined by a veth pair; ping across the tunnel, then `wg show` and `firezone-tunnel show`
/// report the handshake and transfer. A new listen port keeps the peer's figures and session
/// reachable. Also: deleting the TUN device stops the daemon (exit 0, as wg-quick down expects).
/// </summary>
public sealed class TunnelTrafficTests
{
    private static Task OkAsync(NetworkNamespace ns, string file, params string[] arguments) => WireGuardGoPair.OkAsync(ns, file, arguments);

    [Fact]
    public async Task Ping_crosses_a_tunnel_to_wireguard_go_and_show_reports_it()
    {
        await using var pair = await WireGuardGoPair.StartAsync(77);
        var ping = await pair.A.ExecAsync("ping", ["-c", "3", "-W", "5", pair.TunnelB], timeout: TimeSpan.FromSeconds(40));
        Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr);

        string shown = (await ProcessRunner.WgAsync("show", pair.Ours)).Stdout;
        Assert.Contains("latest handshake:", shown);
        Assert.Contains("transfer:", shown);
        var show = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["show", pair.Ours]);
        Assert.Contains("ecn mode: normal", show.Stdout);
        Assert.Contains("latest handshake:", show.Stdout);
        // The handshake's X25519 and the transport messages' ChaCha20-Poly1305 came from this machine's OpenSSL
        // (OpenSslX25519, OpenSslChaCha20Poly1305), not the fallbacks: the ping crossed both ways through them.
        string log = await File.ReadAllTextAsync(pair.Daemon.LogFile);
        Assert.Contains("X25519 from OpenSSL 3", log);
        Assert.Contains("ChaCha20-Poly1305 from OpenSSL 3", log);
    }

    [Fact]
    public async Task A_new_listen_port_keeps_the_session_counters_and_learned_endpoint_and_the_peer_follows_at_once()
    {
        // We never had B's endpoint configured: we learned it from B's handshake.
        await using var pair = await WireGuardGoPair.StartAsync(76, endpointAtA: false);
        var (before, theirHandshake) = await PingFromTheirsAsync(pair);

        // As wireguard-go keeps its peers and sessions through a new port (BindUpdate), so must we.
        Assert.Equal(0, (await ProcessRunner.WgAsync("set", pair.Ours, "listen-port", "51999")).ExitCode);
        Assert.Equal("51999", (await ProcessRunner.WgAsync("show", pair.Ours, "listen-port")).Stdout.Trim());
        var after = await AssertKeptAsync(pair, before);
        Assert.Equal(before[4], after[4]); // the same session: no new handshake

        // A keepalive on the session from the new port moves B's endpoint for us before B sends anything
        // (without it, B would go on sending to the old port until its session expired).
        string theirs = "";
        for (var deadline = DateTime.UtcNow.AddSeconds(5); DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            theirs = (await ProcessRunner.WgAsync("show", pair.Theirs, "endpoints")).Stdout;
            if (theirs.Contains($"{pair.UnderlayA}:51999", StringComparison.Ordinal))
            {
                break;
            }
        }
        Assert.Contains($"{pair.UnderlayA}:51999", theirs);
        var resumed = await pair.B.ExecAsync("ping", ["-c", "1", "-w", "5", pair.TunnelA], timeout: TimeSpan.FromSeconds(20));
        Assert.True(resumed.ExitCode == 0, resumed.Stdout + resumed.Stderr + await File.ReadAllTextAsync(pair.Daemon.LogFile));
        var last = await pair.OurPeerDumpAsync();
        Assert.True(long.Parse(last[5]) > long.Parse(after[5]), $"rx {after[5]} -> {last[5]}");
        Assert.Equal(before[4], last[4]); // still the session of before the move, on both sides
        Assert.Equal(theirHandshake, await TheirLatestHandshakeAsync(pair));
        Assert.Contains("sessions kept", await File.ReadAllTextAsync(pair.Daemon.LogFile));
    }

    [Fact]
    public async Task A_tunnel_rebuilt_for_bigger_buffers_keeps_the_session_counters_and_learned_endpoint()
    {
        // An MTU larger than the packet buffers rebuilds the tunnel on bigger ones. The private key
        // is the same, so the sessions go on in the rebuilt tunnel (PeerHandovers), as wireguard-go
        // keeps them through an MTU change: no new handshake on either side. Each peer keeps its
        // figures and the endpoint it was learned at.
        await using var pair = await WireGuardGoPair.StartAsync(74, endpointAtA: false);
        var (before, theirHandshake) = await PingFromTheirsAsync(pair);

        static int Starts(string log) => log.Split("running on UDP port").Length - 1;
        int startsBefore = Starts(await File.ReadAllTextAsync(pair.Daemon.LogFile));
        string socketBefore = await UdpSocketInodeAsync(pair.A, pair.PortA);
        await OkAsync(pair.A, "ip", "link", "set", pair.Ours, "mtu", "4000");
        string log = "";
        for (var deadline = DateTime.UtcNow.AddSeconds(10); DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            log = await File.ReadAllTextAsync(pair.Daemon.LogFile);
            if (Starts(log) > startsBefore)
            {
                break;
            }
        }
        Assert.Contains("rebuilding the tunnel", log);
        Assert.Equal(startsBefore + 1, Starts(log));
        // The same socket, never closed: closing it and binding the port again let another process
        // take the port in between, and the rebuilt tunnel then had none (a concurrency review).
        Assert.Equal(socketBefore, await UdpSocketInodeAsync(pair.A, pair.PortA));
        var after = await AssertKeptAsync(pair, before);

        var resumed = await pair.B.ExecAsync("ping", ["-c", "1", "-w", "5", pair.TunnelA], timeout: TimeSpan.FromSeconds(20));
        Assert.True(resumed.ExitCode == 0, resumed.Stdout + resumed.Stderr + await File.ReadAllTextAsync(pair.Daemon.LogFile));
        var last = await pair.OurPeerDumpAsync();
        Assert.True(long.Parse(last[5]) > long.Parse(after[5]), $"rx {after[5]} -> {last[5]}");
        Assert.Equal(before[4], last[4]); // our latest handshake: still the one of before the rebuild
        Assert.Equal(theirHandshake, await TheirLatestHandshakeAsync(pair)); // and theirs: the same session
    }

    [Fact]
    public async Task A_removed_private_key_keeps_the_peers_counters_and_latest_handshake_in_show()
    {
        // wireguard-go keeps its peers, with their transfer counters and latest handshake, while it
        // has no private key (`wg set IF private-key /dev/null`), and `wg show` reports them. Ours
        // reported them from the configuration alone (no handshake, 0 B each way) until a key came
        // back (found by a side-by-side of wg(8) against both daemons).
        await using var pair = await WireGuardGoPair.StartAsync(72, endpointAtA: false);
        var (before, _) = await PingFromTheirsAsync(pair);

        await OkAsync(pair.A, "wg", "set", pair.Ours, "private-key", "/dev/null");
        Assert.Equal("(none)", (await ProcessRunner.WgAsync("show", pair.Ours, "private-key")).Stdout.Trim());
        var keyless = await AssertKeptAsync(pair, before);
        Assert.Equal(before[4], keyless[4]);
    }

    /// <summary>
    /// `systemctl reload` of a file whose PrivateKey is commented out: wg syncconf sends the key's
    /// removal and every peer of the file (a Gateway's Clients have no Endpoint) in one request. The
    /// peers were applied with no tunnel running, from their configuration as read before the key's
    /// removal carried the learned endpoint over, so the endpoint went back to the configured one
    /// ("(none)", or the one of an earlier key removal); with the key back the Gateway sent to it
    /// and could not reach its Client until the Client handshook again. Found in an operator's review
    /// (two reloads: key commented out, then back).
    /// </summary>
    [Fact]
    public async Task A_private_key_removed_in_the_request_that_names_the_peers_keeps_their_learned_endpoint()
    {
        await using var pair = await WireGuardGoPair.StartAsync(84, endpointAtA: false);
        var (before, _) = await PingFromTheirsAsync(pair);
        string keyFile = Path.Combine(Path.GetTempPath(), pair.Ours + ".key");
        await File.WriteAllTextAsync(keyFile, (await ProcessRunner.WgAsync("show", pair.Ours, "private-key")).Stdout);
        try
        {
            await OkAsync(pair.A, "wg", "set", pair.Ours, "private-key", "/dev/null", "peer", pair.PublicB, "persistent-keepalive", "0");
            Assert.Equal("(none)", (await ProcessRunner.WgAsync("show", pair.Ours, "private-key")).Stdout.Trim());
            await AssertKeptAsync(pair, before);

            await OkAsync(pair.A, "wg", "set", pair.Ours, "private-key", keyFile);
            await AssertKeptAsync(pair, before);
            // The rebuilt tunnel handshakes with the peer at its learned endpoint at once, so a ping
            // from our side gets through without waiting for theirs.
            var ping = await pair.A.ExecAsync("ping", ["-c", "1", "-W", "3", pair.TunnelB], timeout: TimeSpan.FromSeconds(20));
            Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr + await File.ReadAllTextAsync(pair.Daemon.LogFile));
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    [Fact]
    public async Task A_ping_sent_as_the_mtu_change_rebuilds_the_tunnel_gets_its_answer()
    {
        // As wg-quick up runs `ip link set mtu 9000 up` and a user pings at once: the rebuild stops the
        // old tunnel while the ping's packet (or the handshake it starts, or the reply) is on its way.
        // The old tunnel stops reading first, so what arrives meanwhile waits in the kernel's queues
        // for the new one; what it held (a staged packet, the handshake in flight, the session) goes
        // on in the new one. Before, the first ping went unanswered in about half of such starts.
        for (int round = 0; round < 3; round++)
        {
            await using var pair = await WireGuardGoPair.StartAsync(73);
            var run = await pair.A.ExecAsync("sh", ["-c", $"ip link set {pair.Ours} mtu 9000 && ping -c 1 -W 5 {pair.TunnelB}"],
                timeout: TimeSpan.FromSeconds(20));
            // The rebuild follows the link notification; on a loaded machine the ping can be answered
            // (by the old tunnel) before the daemon has read it, so its line is waited for.
            string log = await pair.Daemon.WaitForLogAsync("rebuilding the tunnel");
            Assert.True(run.ExitCode == 0, $"round {round}: " + run.Stdout + run.Stderr + log);
            Assert.Contains("rebuilding the tunnel", log);
        }
    }

    /// <summary>
    /// A peer that sends from an address outside its allowed IPs on our side (WireGuard's most common
    /// misconfiguration: the packets are dropped after decryption, whitepaper section 2) is named in
    /// `firezone-tunnel show` under that peer; wg show has no place for it, and until 2026-11-29 only
    /// the firezone.peer.* metrics counted it.
    /// </summary>
    [Fact]
    public async Task Show_names_the_packets_a_peer_sent_from_outside_its_allowed_ips()
    {
        await using var pair = await WireGuardGoPair.StartAsync(85);
        string outside = $"10.{pair.Subnet}.0.99";
        await OkAsync(pair.B, "ip", "address", "add", outside + "/32", "dev", pair.Theirs);
        var ping = await pair.B.ExecAsync("ping", ["-c", "3", "-i", "0.2", "-W", "1", "-I", outside, pair.TunnelA], timeout: TimeSpan.FromSeconds(20));
        Assert.NotEqual(0, ping.ExitCode); // dropped by us: no echo reply

        string shown = "";
        for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10); DateTime.UtcNow < deadline; await Task.Delay(100))
        {
            var show = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["show", pair.Ours], timeout: TimeSpan.FromSeconds(10));
            Assert.True(show.ExitCode == 0, show.Stderr);
            shown = show.Stdout;
            if (shown.Contains("  dropped: 3 packets from addresses outside its allowed IPs\n", StringComparison.Ordinal))
            {
                break;
            }
        }
        Assert.Contains("  dropped: 3 packets from addresses outside its allowed IPs\n", shown);
    }

    /// <summary>The inode of the UDP socket bound to <paramref name="port"/> in <paramref name="ns"/> (/proc/net/udp and udp6).</summary>
    private static async Task<string> UdpSocketInodeAsync(NetworkNamespace ns, ushort port)
    {
        string table = (await ns.ExecAsync("cat", ["/proc/net/udp", "/proc/net/udp6"])).Stdout;
        string local = ":" + port.ToString("X4", System.Globalization.CultureInfo.InvariantCulture);
        var inodes = table.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length > 9 && fields[1].EndsWith(local, StringComparison.Ordinal))
            .Select(fields => fields[9])
            .ToList();
        return Assert.Single(inodes);
    }

    /// <summary>wireguard-go pings us first, so we know its endpoint only from its handshake; our peer dump and its latest handshake then.</summary>
    private static async Task<(string[] Dump, string TheirHandshake)> PingFromTheirsAsync(WireGuardGoPair pair)
    {
        var ping = await pair.B.ExecAsync("ping", ["-c", "3", "-W", "5", pair.TunnelA], timeout: TimeSpan.FromSeconds(40));
        Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr);
        var dump = await pair.OurPeerDumpAsync();
        Assert.Equal($"{pair.UnderlayB}:{pair.PortB}", dump[2]);
        return (dump, await TheirLatestHandshakeAsync(pair));
    }

    /// <summary>The learned endpoint and the transfer counters survived the change; our peer dump now.</summary>
    private static async Task<string[]> AssertKeptAsync(WireGuardGoPair pair, string[] before)
    {
        var after = await pair.OurPeerDumpAsync();
        Assert.Equal(before[2], after[2]);
        Assert.True(long.Parse(after[5]) >= long.Parse(before[5]), $"rx {before[5]} -> {after[5]}");
        Assert.True(long.Parse(after[6]) >= long.Parse(before[6]), $"tx {before[6]} -> {after[6]}");
        return after;
    }

    private static async Task<string> TheirLatestHandshakeAsync(WireGuardGoPair pair)
    {
        string text = (await ProcessRunner.WgAsync("show", pair.Theirs, "latest-handshakes")).Stdout.Trim();
        string[] fields = text.Split('\t');
        Assert.True(fields.Length == 2 && fields[1] != "0", $"wireguard-go's latest handshake: '{text}'");
        return fields[1];
    }

    [Fact]
    public async Task Packets_from_a_peer_with_a_larger_mtu_than_ours_get_through()
    {
        // wireguard-go at MTU 8920 on a 9000-byte path, we at the default 1420: its 3,000- and
        // 8,000-byte packets are larger than our buffers, and still ours to deliver (the kernel's
        // WireGuard and wireguard-go take any packet up to 64 KiB whatever their own MTU).
        await using var pair = await WireGuardGoPair.StartAsync(75);
        await OkAsync(pair.A, "ip", "link", "set", pair.VethA, "mtu", "9000");
        await OkAsync(pair.B, "ip", "link", "set", pair.VethB, "mtu", "9000");
        await OkAsync(pair.B, "ip", "link", "set", pair.Theirs, "mtu", "8920");
        var first = await pair.A.ExecAsync("ping", ["-c", "1", "-W", "5", pair.TunnelB], timeout: TimeSpan.FromSeconds(20));
        Assert.True(first.ExitCode == 0, first.Stdout + first.Stderr);
        foreach (string size in new[] { "3000", "8000" })
        {
            var ping = await pair.B.ExecAsync("ping", ["-c", "3", "-W", "5", "-M", "do", "-s", size, pair.TunnelA], timeout: TimeSpan.FromSeconds(40));
            Assert.True(ping.ExitCode == 0, $"{size}-byte pings from the larger-MTU peer: {ping.Stdout}{ping.Stderr}");
        }
    }

    [Fact]
    public async Task A_fresh_interface_listens_on_a_port_before_it_has_a_key()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzp" + Guid.NewGuid().ToString("N")[..8];
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        await daemon.WaitReadyAsync();
        // As wireguard-go: bound at once on a random port, which wg show reports.
        var shown = await ProcessRunner.WgAsync("show", name, "listen-port");
        Assert.True(shown.ExitCode == 0, shown.Stderr);
        int port = int.Parse(shown.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(port, 1, 65535);
        var sockets = await ns.ExecAsync("ss", ["-H", "-u", "-l", "-n"], timeout: TimeSpan.FromSeconds(15));
        Assert.Contains($":{port} ", sockets.Stdout);
    }

    [Fact]
    public async Task Deleting_the_TUN_device_of_a_daemon_without_a_key_stops_it_too()
    {
        // No private key yet, so no tunnel and no TUN reader: the link watch sees the device go.
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzk" + Guid.NewGuid().ToString("N")[..8];
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        await daemon.WaitReadyAsync();
        await OkAsync(ns, "ip", "link", "delete", name);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.False(File.Exists(daemon.SocketPath));
    }

    [Fact]
    public async Task Moving_the_interface_of_a_daemon_without_a_key_to_another_namespace_does_not_stop_it()
    {
        // Deleted before ns: an interface left in it (a failed test) is deleted with it.
        await using var ns = await NetworkNamespace.CreateAsync();
        await using var elsewhere = await NetworkNamespace.CreateAsync();
        string name = "fzm" + Guid.NewGuid().ToString("N")[..8];
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        await daemon.WaitReadyAsync();
        await OkAsync(ns, "ip", "link", "set", name, "netns", elsewhere.Name);
        // No interface of its index here any more, but its descriptor is attached: moved, not deleted
        // (the kernel's WireGuard and wireguard-go go on through a move too).
        var shown = await ProcessRunner.WgAsync("show", name);
        Assert.True(shown.ExitCode == 0, shown.Stderr + await File.ReadAllTextAsync(daemon.LogFile)); // was: stopped, "is gone"
        Assert.DoesNotContain("is gone", await File.ReadAllTextAsync(daemon.LogFile));

        // Back (down, as a moved interface comes), up, and then deleted: the daemon stops as before.
        await OkAsync(elsewhere, "ip", "link", "set", name, "netns", ns.Name);
        await OkAsync(ns, "ip", "link", "set", name, "up");
        Assert.Equal(0, (await ProcessRunner.WgAsync("show", name)).ExitCode);
        await OkAsync(ns, "ip", "link", "delete", name);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.False(File.Exists(daemon.SocketPath));
    }

    [Fact]
    public async Task Deleting_the_TUN_device_stops_the_daemon_as_wg_quick_down_expects()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzl" + Guid.NewGuid().ToString("N")[..8];
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        await File.WriteAllTextAsync(keyFile, TestKeys.New().ToBase64());
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        try
        {
            await daemon.WaitReadyAsync();
            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "private-key", keyFile)).ExitCode);
            // wg-quick down deletes a userspace daemon's interface: a stop, not a failure (exit 0 and
            // no error lines, as wireguard-go), so log alerts on errors do not fire on every down.
            await OkAsync(ns, "ip", "link", "delete", name);
            Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)));
            Assert.False(File.Exists(daemon.SocketPath));
            var lines = await File.ReadAllLinesAsync(daemon.LogFile);
            Assert.DoesNotContain(lines, line => line.Contains("\"severity\":\"Error\"", StringComparison.Ordinal));
            Assert.Contains(lines, line => line.Contains("stopped: TUN device lost: TUN device " + name + " is gone", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(keyFile);
        }
    }
}
