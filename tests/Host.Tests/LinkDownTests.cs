using System.Globalization;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// <c>ip link set wg0 down</c> stops the tunnel and closes its UDP port, and <c>up</c> binds the port
/// again and starts the tunnel, as the kernel's WireGuard does (and wireguard-go means to: its
/// Device.Down and Up on link events). Before, the daemon ignored the link's state: a down interface kept its
/// port, went on sending persistent keepalives and answering handshakes (the peer saw a live
/// session and sent into a link that dropped everything), and a key set while down started a
/// tunnel at once.
/// </summary>
public sealed class LinkDownTests
{
    private static Task OkAsync(NetworkNamespace ns, string file, params string[] arguments) => WireGuardGoPair.OkAsync(ns, file, arguments);

    private static int Starts(string log) => log.Split("running on UDP port").Length - 1;

    /// <summary>Whether a UDP socket listens on <paramref name="port"/> in <paramref name="ns"/>.</summary>
    private static async Task<bool> ListensAsync(NetworkNamespace ns, int port)
    {
        var sockets = await ns.ExecAsync("ss", ["-H", "-u", "-l", "-n"], timeout: TimeSpan.FromSeconds(15));
        Assert.True(sockets.ExitCode == 0, sockets.Stderr);
        return sockets.Stdout.Contains($":{port} ", StringComparison.Ordinal);
    }

    private static async Task<string> ListenPortAsync(string name)
    {
        var shown = await ProcessRunner.WgAsync("show", name, "listen-port");
        Assert.True(shown.ExitCode == 0, shown.Stderr);
        return shown.Stdout.Trim();
    }

    /// <summary>What our daemon counts as sent to its one peer (`wg show transfer`).</summary>
    private static async Task<long> SentAsync(WireGuardGoPair pair)
    {
        var transfer = await ProcessRunner.WgAsync("show", pair.Ours, "transfer");
        Assert.True(transfer.ExitCode == 0, transfer.Stderr);
        return long.Parse(transfer.Stdout.Trim().Split('\t')[2], CultureInfo.InvariantCulture);
    }

    /// <summary>Waits (bounded) until the daemon's log holds <paramref name="text"/> <paramref name="times"/> times; returns the log.</summary>
    private static async Task<string> LogWithAsync(DaemonProcess daemon, string text, int times = 1)
    {
        string log = "";
        for (var deadline = DateTime.UtcNow.AddSeconds(10); DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            log = await File.ReadAllTextAsync(daemon.LogFile);
            if (log.Split(text).Length - 1 >= times)
            {
                break;
            }
        }
        return log;
    }

    private static async Task PingAsync(WireGuardGoPair pair)
    {
        var ping = await pair.A.ExecAsync("ping", ["-c", "2", "-W", "5", pair.TunnelB], timeout: TimeSpan.FromSeconds(30));
        Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr + await File.ReadAllTextAsync(pair.Daemon.LogFile));
    }

    [Fact]
    public async Task Setting_the_link_down_stops_the_tunnel_and_closes_its_port_and_up_starts_both_again()
    {
        await using var pair = await WireGuardGoPair.StartAsync(82);
        await PingAsync(pair);
        await OkAsync(pair.A, "wg", "set", pair.Ours, "peer", pair.PublicB, "persistent-keepalive", "1");

        await OkAsync(pair.A, "ip", "link", "set", pair.OursLink, "down");
        string log = await LogWithAsync(pair.Daemon, " is down: tunnel ");
        Assert.True(log.Contains(" is down: tunnel ", StringComparison.Ordinal), log);
        Assert.False(await ListensAsync(pair.A, pair.PortA)); // was: still bound
        // `wg show` goes on: the configured port (bound again at up) and the peer with its figures.
        Assert.Equal(pair.PortA.ToString(CultureInfo.InvariantCulture), await ListenPortAsync(pair.Ours));
        long sent = await SentAsync(pair);
        Assert.True(sent > 0);
        // Nothing leaves while down: no keepalive (one a second before), no handshake.
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.Equal(sent, await SentAsync(pair)); // was: a keepalive a second

        await OkAsync(pair.A, "ip", "link", "set", pair.OursLink, "up");
        log = await LogWithAsync(pair.Daemon, " is up (MTU ");
        Assert.True(log.Contains(" is up (MTU ", StringComparison.Ordinal), log);
        Assert.True(await ListensAsync(pair.A, pair.PortA));
        await PingAsync(pair);
        Assert.True(await SentAsync(pair) > sent); // the figures go on from where they were
        Assert.DoesNotContain("\"Error\"", await File.ReadAllTextAsync(pair.Daemon.LogFile));
    }

    [Fact]
    public async Task A_daemon_binds_the_same_port_again_at_up_and_a_key_and_port_set_while_down_take_effect_at_up()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzu" + Guid.NewGuid().ToString("N")[..8];
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        await File.WriteAllTextAsync(keyFile, TestKeys.New().ToBase64());
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        try
        {
            await daemon.WaitReadyAsync();
            // No key: bound on a port the kernel picked, closed while down, the same one again at up.
            int picked = int.Parse(await ListenPortAsync(name), CultureInfo.InvariantCulture);
            await OkAsync(ns, "ip", "link", "set", name, "down");
            Assert.Equal(picked.ToString(CultureInfo.InvariantCulture), await ListenPortAsync(name));
            Assert.False(await ListensAsync(ns, picked)); // was: still bound
            await OkAsync(ns, "ip", "link", "set", name, "up");
            await LogWithAsync(daemon, "again; no tunnel runs until a key is set");
            Assert.True(await ListensAsync(ns, picked));

            // A key and a port set while down: stored (wg show has them), bound and started at up.
            await OkAsync(ns, "ip", "link", "set", name, "down");
            var set = await ProcessRunner.WgAsync("set", name, "private-key", keyFile, "listen-port", "51983",
                "peer", TestKeys.New().ToBase64(), "allowed-ips", "10.9.0.2/32");
            Assert.True(set.ExitCode == 0, set.Stderr);
            Assert.Equal("51983", await ListenPortAsync(name));
            Assert.False(await ListensAsync(ns, 51983));
            Assert.Equal(0, Starts(await File.ReadAllTextAsync(daemon.LogFile))); // was: a tunnel started on the key at once
            var publicKey = await ProcessRunner.WgAsync("show", name, "public-key");
            Assert.Equal((await ProcessRunner.RunAsync("wg", ["pubkey"], stdin: await File.ReadAllTextAsync(keyFile))).Stdout.Trim(), publicKey.Stdout.Trim());

            await OkAsync(ns, "ip", "link", "set", name, "up");
            string log = await LogWithAsync(daemon, "running on UDP port 51983");
            Assert.Equal(1, Starts(log));
            Assert.True(await ListensAsync(ns, 51983));
            Assert.False(await ListensAsync(ns, picked));
            Assert.DoesNotContain("\"Error\"", log);
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    [Fact]
    public async Task A_port_taken_while_the_link_was_down_is_bound_once_it_is_free_and_wg_show_answers_meanwhile()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzv" + Guid.NewGuid().ToString("N")[..8];
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        await File.WriteAllTextAsync(keyFile, TestKeys.New().ToBase64());
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        System.Diagnostics.Process? holder = null;
        try
        {
            await daemon.WaitReadyAsync();
            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "private-key", keyFile, "listen-port", "51984")).ExitCode);
            await OkAsync(ns, "ip", "link", "set", name, "down");
            Assert.Equal("51984", await ListenPortAsync(name)); // acts on the down: the port is closed
            // Another program takes the port (both families) while the link is down.
            var start = new System.Diagnostics.ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
            foreach (var a in (string[])["netns", "exec", ns.Name, "python3", "-c",
                "import socket,sys; s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0); s.bind(('::',51984)); print('bound', flush=True); sys.stdin.read()"])
            {
                start.ArgumentList.Add(a);
            }
            holder = System.Diagnostics.Process.Start(start)!;
            using (var bound = new CancellationTokenSource(TimeSpan.FromSeconds(15)))
            {
                Assert.Equal("bound", (await holder.StandardOutput.ReadLineAsync(bound.Token))?.Trim());
            }

            await OkAsync(ns, "ip", "link", "set", name, "up");
            Assert.Equal("51984", await ListenPortAsync(name));
            // A bigger MTU while nothing is bound: `wg show` answers (was: EADDRINUSE from the rebuild's bind).
            await OkAsync(ns, "ip", "link", "set", name, "mtu", "9000");
            var shown = await ProcessRunner.WgAsync("show", name);
            Assert.True(shown.ExitCode == 0, shown.Stderr + await File.ReadAllTextAsync(daemon.LogFile));
            // A set meanwhile (wg syncconf repeats the port) applies: the same port and a new key are
            // stored, the peer added (was: EADDRINUSE from the port's bind, and the peers dropped).
            string peer = TestKeys.New().ToBase64();
            var newKey = TestKeys.New();
            await File.WriteAllTextAsync(keyFile, newKey.ToBase64());
            var set = await ProcessRunner.WgAsync("set", name, "listen-port", "51984", "private-key", keyFile, "peer", peer, "allowed-ips", "10.9.0.2/32");
            Assert.True(set.ExitCode == 0, set.Stderr + await File.ReadAllTextAsync(daemon.LogFile));
            Assert.Equal(newKey.ToBase64(), (await ProcessRunner.WgAsync("show", name, "private-key")).Stdout.Trim());
            Assert.Contains(peer, (await ProcessRunner.WgAsync("show", name, "peers")).Stdout);
            string log = await File.ReadAllTextAsync(daemon.LogFile);
            Assert.Equal(1, log.Split("could not be bound").Length - 1); // one Error; the retries at Debug

            // Freed: the next look binds it and starts the tunnel.
            holder.Kill();
            await holder.WaitForExitAsync();
            Assert.Equal(0, (await ProcessRunner.WgAsync("show", name)).ExitCode);
            log = await LogWithAsync(daemon, "Tunnel 2 running on UDP port 51984");
            Assert.Contains("UDP port 51984 bound at last", log); // was: never bound again
            Assert.Contains("Tunnel 2 running on UDP port 51984", log);
            Assert.True(await ListensAsync(ns, 51984));
        }
        finally
        {
            if (holder is { HasExited: false })
            {
                holder.Kill();
                await holder.WaitForExitAsync();
            }
            holder?.Dispose();
            File.Delete(keyFile);
        }
    }

    [Fact]
    public async Task A_down_and_up_in_quick_succession_restarts_the_tunnel_as_the_kernel_would()
    {
        await using var pair = await WireGuardGoPair.StartAsync(83);
        await PingAsync(pair);
        string batch = Path.Combine(Path.GetTempPath(), $"fzt-{pair.Ours}.ip");
        try
        {
            // One ip process: the link is up again before the daemon could read its state.
            await File.WriteAllTextAsync(batch, $"link set {pair.OursLink} down\nlink set {pair.OursLink} up\n");
            await OkAsync(pair.A, "ip", "-batch", batch);
        }
        finally
        {
            File.Delete(batch);
        }
        string log = await LogWithAsync(pair.Daemon, " is up (MTU ");
        Assert.True(log.Contains(" is down: tunnel ", StringComparison.Ordinal), log); // was: unseen, the tunnel went on
        Assert.Contains(" is up (MTU ", log);
        Assert.True(await ListensAsync(pair.A, pair.PortA));
        await PingAsync(pair);
    }
}
