namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The daemon follows its interface through a rename (<c>ip link set NAME name NEW</c>) by its
/// interface index, which a rename keeps, as wireguard-go keeps running: the UAPI socket keeps the
/// name the daemon was started with (wireguard-go's does too: `wg show NEW` does not find it), and
/// the MTU is read from whatever the interface is called now. Before, the interface was read by its
/// first name: a daemon without a key took the rename for a deletion and stopped, a daemon with one
/// stopped following the MTU, and a key change failed (EIO) reading the MTU by the old name.
/// </summary>
public sealed class InterfaceRenameTests
{
    private static Task OkAsync(NetworkNamespace ns, string file, params string[] arguments) => WireGuardGoPair.OkAsync(ns, file, arguments);

    private static int Starts(string log) => log.Split("running on UDP port").Length - 1;

    private static string NewName(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Waits (bounded) until the daemon's log holds <paramref name="text"/>; returns the log.</summary>
    private static async Task<string> LogWithAsync(DaemonProcess daemon, string text)
    {
        string log = "";
        for (var deadline = DateTime.UtcNow.AddSeconds(10); DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            log = await File.ReadAllTextAsync(daemon.LogFile);
            if (log.Contains(text, StringComparison.Ordinal))
            {
                break;
            }
        }
        return log;
    }

    [Fact]
    public async Task A_daemon_without_a_key_survives_a_rename_is_configured_by_its_socket_name_and_carries_traffic()
    {
        // The pair renames our interface after the daemon started and before `wg set` gives it a key.
        string renamed = NewName("fzq");
        await using var pair = await WireGuardGoPair.StartAsync(68, renameTo: renamed);

        var ping = await pair.A.ExecAsync("ping", ["-c", "3", "-W", "5", pair.TunnelB], timeout: TimeSpan.FromSeconds(40));
        Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr + await File.ReadAllTextAsync(pair.Daemon.LogFile));
        Assert.Contains("latest handshake:", (await ProcessRunner.WgAsync("show", pair.Ours)).Stdout);
        // As wireguard-go's, the socket keeps the name the daemon was started with.
        Assert.NotEqual(0, (await ProcessRunner.WgAsync("show", renamed)).ExitCode);
        Assert.DoesNotContain("stopping", await File.ReadAllTextAsync(pair.Daemon.LogFile));
    }

    [Fact]
    public async Task A_daemon_with_a_key_follows_an_mtu_change_made_after_a_rename()
    {
        await using var pair = await WireGuardGoPair.StartAsync(69);
        string renamed = NewName("fzq");
        await pair.RenameOursAsync(renamed);
        // A get acts on the link's state at once: the daemon has seen it down before it comes up.
        Assert.Equal(0, (await ProcessRunner.WgAsync("show", pair.Ours)).ExitCode);
        await OkAsync(pair.A, "ip", "link", "set", renamed, "mtu", "1300", "up");
        // A UAPI get re-reads the MTU (the link watch does too, unprompted). The link was down for the
        // rename, so the tunnel starts again at up (LinkDownTests), on the MTU the interface has then.
        Assert.Equal(0, (await ProcessRunner.WgAsync("show", pair.Ours)).ExitCode);
        string log = await LogWithAsync(pair.Daemon, $"{renamed} is up (MTU 1300)");
        Assert.Contains($"{renamed} is up (MTU 1300)", log); // was: not followed (read by the old name)

        // A jumbo MTU after the rename rebuilds the tunnel on buffers that hold its packets.
        await OkAsync(pair.A, "ip", "link", "set", renamed, "mtu", "9000");
        Assert.Equal(0, (await ProcessRunner.WgAsync("show", pair.Ours)).ExitCode);
        log = await LogWithAsync(pair.Daemon, "rebuilding the tunnel on");
        Assert.Contains("rebuilding the tunnel on", log);
        await OkAsync(pair.A, "ip", "link", "set", renamed, "mtu", "1300");

        var ping = await pair.A.ExecAsync("ping", ["-c", "3", "-W", "5", pair.TunnelB], timeout: TimeSpan.FromSeconds(40));
        Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr + await File.ReadAllTextAsync(pair.Daemon.LogFile));
        Assert.DoesNotContain("stopping", await File.ReadAllTextAsync(pair.Daemon.LogFile));
    }

    [Fact]
    public async Task A_key_change_after_a_rename_rebuilds_the_tunnel_on_the_new_key()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = NewName("fzd"), renamed = NewName("fzq");
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        var oldKey = TestKeys.New();
        var newKey = TestKeys.New();
        await File.WriteAllTextAsync(keyFile, oldKey.ToBase64());
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        try
        {
            await daemon.WaitReadyAsync();
            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "private-key", keyFile)).ExitCode);
            await OkAsync(ns, "ip", "link", "set", name, "down");
            await OkAsync(ns, "ip", "link", "set", name, "name", renamed);

            await File.WriteAllTextAsync(keyFile, newKey.ToBase64());
            var set = await ProcessRunner.WgAsync("set", name, "private-key", keyFile);
            Assert.True(set.ExitCode == 0, set.Stderr + await File.ReadAllTextAsync(daemon.LogFile)); // was: EIO, the MTU read by the old name
            Assert.Equal(newKey.ToBase64(), (await ProcessRunner.WgAsync("show", name, "private-key")).Stdout.Trim());
            // The link is down (a rename needs it so): the tunnel on the new key starts when it is up
            // (LinkDownTests), reading the MTU of the renamed interface.
            await OkAsync(ns, "ip", "link", "set", renamed, "up");
            string log = await LogWithAsync(daemon, "Tunnel 2 running");
            Assert.Equal(2, Starts(log));
            Assert.DoesNotContain("not applied", log);
            Assert.True(await ns.HasLinkAsync(renamed));
        }
        finally
        {
            File.Delete(keyFile);
        }
    }
}
