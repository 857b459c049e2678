namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A rebuild whose old tunnel does not stop in time: one of its reader threads is held in a system
/// call (strace's delay injection keeps the thread at its poll's return for seconds, as a thread
/// the scheduler does not run, or one stuck in the kernel), so ActorTunnelControl finds it still
/// running after the stop and cannot simply re-arm the devices it shares. Before, it then closed
/// the TUN device and opened the interface again by its current name: the held thread still had
/// the old descriptor (its read keeps it open), so the kernel refused the name ("already in use"),
/// `wg set` got EIO, the "rollback" started a tunnel on the closed device object, and the interface,
/// made persistent for the reopen, was left behind when the daemon stopped (found by a review of
/// the known gaps, 2026-11-28: the reopen after a missed stop bound and the rollback after the old
/// tunnel stopped had no test). When a duplicate then failed (out of descriptors: strace's fault
/// injection makes eventfd2 fail with EMFILE, <see cref="SyscallFailure"/>), the rollback started a
/// tunnel with the previous key on the old device objects, whose wake-ups the stuck thread's stop
/// had left signalled: its readers ended at once while the log said "started again", and the next
/// port change moved that dead tunnel's socket (found by a review of the rollback, 2026-11-28).
/// </summary>
public sealed class StuckReaderRebuildTests
{
    private static Task OkAsync(NetworkNamespace ns, string file, params string[] arguments) => WireGuardGoPair.OkAsync(ns, file, arguments);

    private static string NewName(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    /// <summary>
    /// A reader thread's join (Tunnels.ReaderStopBound) leaves a second of the bound the host gives
    /// a tunnel's stop, for the rest of the stop: Actors.Tests' ReaderStopBoundTests measures the
    /// stop with a shorter join, so that its margin holds on a loaded machine, and relies on this.
    /// </summary>
    [Fact]
    public void The_readers_join_bound_leaves_the_host_a_second_of_its_stop_bound()
    {
        Assert.True(Firezone.Actors.Actors.Tunnel.Tunnels.ReaderStopBound <= Tunnel.ActorTunnelControl.TunnelStopBound - TimeSpan.FromSeconds(1),
            $"join {Firezone.Actors.Actors.Tunnel.Tunnels.ReaderStopBound}, stop bound {Tunnel.ActorTunnelControl.TunnelStopBound}");
    }

    [Fact]
    public async Task A_key_change_while_the_tun_reader_is_stuck_after_a_rename_runs_on_the_same_interface_and_leaves_nothing_behind()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = NewName("fzd"), renamed = NewName("fzq");
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        var newKey = TestKeys.New();
        string peer = TestKeys.New().ToBase64();
        await File.WriteAllTextAsync(keyFile, TestKeys.New().ToBase64());
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        try
        {
            await daemon.WaitReadyAsync();
            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "private-key", keyFile, "peer", peer, "allowed-ips", "10.9.0.2/32",
                "endpoint", "127.0.0.1:9")).ExitCode);
            await OkAsync(ns, "ip", "link", "set", name, "down");
            await OkAsync(ns, "ip", "link", "set", name, "name", renamed);
            await OkAsync(ns, "ip", "address", "add", "10.9.0.1/24", "dev", renamed);
            await OkAsync(ns, "ip", "link", "set", renamed, "up");
            // The link down for the rename stopped the tunnel, and up starts it again (LinkDownTests):
            // a get acts on the link's state at once; its reader threads follow a moment later
            // (ThreadHold waits for the one to hold).
            Assert.Equal(0, (await ProcessRunner.WgAsync("show", name)).ExitCode);

            await using (await ThreadHold.StartAsync(daemon.Pid, "tun-reader", TimeSpan.FromSeconds(6)))
            {
                await File.WriteAllTextAsync(keyFile, newKey.ToBase64());
                var set = await ProcessRunner.WgAsync("set", name, "private-key", keyFile);
                string log = await File.ReadAllTextAsync(daemon.LogFile);
                Assert.Contains("reader thread(s) still running", log); // the old tunnel did not stop in time
                Assert.True(set.ExitCode == 0, set.Stderr + log); // was: EIO, "TUN device name ... is already in use"
                Assert.Equal(newKey.ToBase64(), (await ProcessRunner.WgAsync("show", name, "private-key")).Stdout.Trim());
                Assert.True(await ns.HasLinkAsync(renamed));
                Assert.False(await ns.HasLinkAsync(name)); // no second interface by the first name

                // The rebuilt tunnel reads the interface while the old reader is still held: a packet
                // for the peer starts a handshake (sent to its endpoint, counted).
                await ns.ExecAsync("ping", ["-c", "1", "-W", "1", "10.9.0.2"], timeout: TimeSpan.FromSeconds(10));
                string transfer = (await ProcessRunner.WgAsync("show", name, "transfer")).Stdout;
                Assert.False(transfer.TrimEnd().EndsWith("\t0", StringComparison.Ordinal), "nothing sent: " + transfer + await File.ReadAllTextAsync(daemon.LogFile));
            }

            daemon.Signal(Tmds.Linux.LibC.SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(10)));
            Assert.False(await ns.HasLinkAsync(renamed)); // was: left behind, persistent
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    [Fact]
    public async Task An_mtu_rebuild_while_the_udp_receiver_is_stuck_keeps_the_port_and_carries_traffic()
    {
        await using var pair = await WireGuardGoPair.StartAsync(70);
        await AssertPingsAsync(pair, pair.A, pair.TunnelB);

        await using (await ThreadHold.StartAsync(pair.Daemon.Pid, "udp-receiver", TimeSpan.FromSeconds(8)))
        {
            // Beyond the packet buffers: the tunnel is rebuilt on bigger ones, with the same key and port.
            await OkAsync(pair.A, "ip", "link", "set", pair.OursLink, "mtu", "9000");
            Assert.Equal(0, (await ProcessRunner.WgAsync("show", pair.Ours)).ExitCode);
            string log = await WaitForLogAsync(pair, "Tunnel 2 running", "\"Error\"");
            Assert.Contains("reader thread(s) still running", log); // the old tunnel did not stop in time
            Assert.True(log.Contains("Tunnel 2 running", StringComparison.Ordinal), log); // was: "UDP port ... is already in use", no tunnel
            Assert.Equal(pair.PortA.ToString(System.Globalization.CultureInfo.InvariantCulture),
                (await ProcessRunner.WgAsync("show", pair.Ours, "listen-port")).Stdout.Trim());

            // Both ways through the rebuilt tunnel while the old receive thread is still held.
            await AssertPingsAsync(pair, pair.A, pair.TunnelB, count: 3);
        }
    }

    [Fact]
    public async Task A_key_change_whose_descriptor_duplicate_fails_while_the_tun_reader_is_stuck_fails_clearly_and_leaves_nothing_behind()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = NewName("fzd");
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        var oldKey = TestKeys.New();
        await File.WriteAllTextAsync(keyFile, oldKey.ToBase64());
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        try
        {
            await daemon.WaitReadyAsync();
            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "private-key", keyFile, "peer", TestKeys.New().ToBase64(),
                "allowed-ips", "10.9.0.2/32", "endpoint", "127.0.0.1:9")).ExitCode);
            await OkAsync(ns, "ip", "address", "add", "10.9.0.1/24", "dev", name);
            await OkAsync(ns, "ip", "link", "set", name, "up");

            await using (await ThreadHold.StartAsync(daemon.Pid, "tun-reader", TimeSpan.FromSeconds(6)))
            {
                ProcessRunner.Result set;
                await using (await SyscallFailure.StartAsync(daemon.Pid, "eventfd2", "EMFILE"))
                {
                    await File.WriteAllTextAsync(keyFile, TestKeys.New().ToBase64());
                    set = await ProcessRunner.WgAsync("set", name, "private-key", keyFile);
                }
                string log = await File.ReadAllTextAsync(daemon.LogFile);
                Assert.Contains("reader thread(s) still running", log); // the old tunnel did not stop in time
                Assert.NotEqual(0, set.ExitCode);
                Assert.Contains("Input/output error", set.Stderr);
                // Was: "the tunnel was started again with the previous one", on the old device
                // objects, whose readers ended at once. The rollback duplicates too, and fails so.
                Assert.DoesNotContain("the tunnel was started again", log);
                Assert.Contains("could not be started again (TUN device " + name + ": cannot create its wake-up eventfd: Too many open files", log);
                Assert.Equal(oldKey.ToBase64(), (await ProcessRunner.WgAsync("show", name, "private-key")).Stdout.Trim());
            }

            daemon.Signal(Tmds.Linux.LibC.SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(10)));
            Assert.False(await ns.HasLinkAsync(name));
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    [Fact]
    public async Task After_a_rebuild_whose_duplicate_failed_the_next_port_change_duplicates_first_and_carries_traffic()
    {
        await using var pair = await WireGuardGoPair.StartAsync(78);
        await AssertPingsAsync(pair, pair.A, pair.TunnelB);
        using var keyFile = await NextKeyFile.WriteAsync(pair);
        await using (await ThreadHold.StartAsync(pair.Daemon.Pid, "udp-receiver", TimeSpan.FromSeconds(10)))
        {
            await using (await SyscallFailure.StartAsync(pair.Daemon.Pid, "eventfd2", "EMFILE"))
            {
                Assert.NotEqual(0, (await ProcessRunner.WgAsync("set", pair.Ours, "private-key", keyFile.Path)).ExitCode);
            }
            Assert.Contains("reader thread(s) still running", await File.ReadAllTextAsync(pair.Daemon.LogFile));

            // Descriptors can be had again; the old receive thread is still held. Was: the port
            // moved under the rolled-back tunnel, whose readers had ended: no ping came back.
            string port = (pair.PortA + 100).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var moved = await ProcessRunner.WgAsync("set", pair.Ours, "listen-port", port);
            Assert.True(moved.ExitCode == 0, moved.Stderr + await File.ReadAllTextAsync(pair.Daemon.LogFile));
            Assert.Equal(port, (await ProcessRunner.WgAsync("show", pair.Ours, "listen-port")).Stdout.Trim());
            await AssertPingsAsync(pair, pair.A, pair.TunnelB, count: 3);
        }
    }

    [Fact]
    public async Task A_key_change_whose_descriptor_duplicate_fails_once_while_the_udp_receiver_is_stuck_rolls_back_onto_duplicates_that_carry_traffic()
    {
        await using var pair = await WireGuardGoPair.StartAsync(79);
        await AssertPingsAsync(pair, pair.A, pair.TunnelB);
        string oldKey = (await ProcessRunner.WgAsync("show", pair.Ours, "private-key")).Stdout.Trim();
        using var keyFile = await NextKeyFile.WriteAsync(pair);
        await using (await ThreadHold.StartAsync(pair.Daemon.Pid, "udp-receiver", TimeSpan.FromSeconds(10)))
        {
            // The rebuild's first eventfd fails; the rollback runs on the same thread, where the next succeed.
            await using (await SyscallFailure.StartAsync(pair.Daemon.Pid, "eventfd2", "EMFILE", firstOnly: true))
            {
                Assert.NotEqual(0, (await ProcessRunner.WgAsync("set", pair.Ours, "private-key", keyFile.Path)).ExitCode);
            }
            string log = await File.ReadAllTextAsync(pair.Daemon.LogFile);
            Assert.Contains("reader thread(s) still running", log);
            Assert.Contains("the tunnel was started again with the previous one", log);
            Assert.Equal(oldKey, (await ProcessRunner.WgAsync("show", pair.Ours, "private-key")).Stdout.Trim());

            // Was: started again on the held objects, whose readers ended at once: no ping came back.
            await AssertPingsAsync(pair, pair.A, pair.TunnelB, count: 3);
        }
    }

    [Fact]
    public async Task A_key_rolled_back_after_the_stuck_tunnel_stopped_handshakes_at_once_so_the_other_side_reaches_it()
    {
        await using var pair = await WireGuardGoPair.StartAsync(80);
        await AssertPingsAsync(pair, pair.A, pair.TunnelB);
        using var keyFile = await NextKeyFile.WriteAsync(pair);
        await using (await ThreadHold.StartAsync(pair.Daemon.Pid, "udp-receiver", TimeSpan.FromSeconds(8)))
        {
            await using (await SyscallFailure.StartAsync(pair.Daemon.Pid, "eventfd2", "EMFILE", firstOnly: true))
            {
                Assert.NotEqual(0, (await ProcessRunner.WgAsync("set", pair.Ours, "private-key", keyFile.Path)).ExitCode);
            }
        }
        Assert.Contains("the tunnel was started again with the previous one", await File.ReadAllTextAsync(pair.Daemon.LogFile));

        // The rolled-back tunnel has none of the old sessions, on which wireguard-go still sends:
        // it handshakes at once, as every rebuild does for the peers that had a session. Was: it
        // waited (the rollback had no running tunnel to ask), and wireguard-go's pings were lost
        // until its own retry, 15 s after its first unanswered packet.
        await AssertPingsAsync(pair, pair.B, pair.TunnelA, deadline: true);
    }

    [Fact]
    public async Task An_mtu_rebuild_whose_descriptor_duplicate_fails_once_while_the_udp_receiver_is_stuck_starts_the_tunnel_again()
    {
        await using var pair = await WireGuardGoPair.StartAsync(81);
        await AssertPingsAsync(pair, pair.A, pair.TunnelB);

        await using (await ThreadHold.StartAsync(pair.Daemon.Pid, "udp-receiver", TimeSpan.FromSeconds(8)))
        {
            string log;
            await using (await SyscallFailure.StartAsync(pair.Daemon.Pid, "eventfd2", "EMFILE", firstOnly: true))
            {
                // Beyond the packet buffers: the tunnel is rebuilt on bigger ones; the rebuild's first eventfd fails.
                await OkAsync(pair.A, "ip", "link", "set", pair.OursLink, "mtu", "9000");
                log = await WaitForLogAsync(pair, "it was started again", "Following the MTU");
            }
            Assert.Contains("reader thread(s) still running", log);
            // Was: "Following the MTU ... failed ...; the tunnel may be down", and none ran until a key was set.
            Assert.True(log.Contains("Rebuilding the tunnel on bigger buffers failed (TUN device " + pair.Ours + ": cannot create its wake-up eventfd", StringComparison.Ordinal)
                && log.Contains("it was started again", StringComparison.Ordinal), log);
            Assert.Contains("Tunnel 2 running", log);
        }
        await AssertPingsAsync(pair, pair.B, pair.TunnelA, deadline: true);
        await AssertPingsAsync(pair, pair.A, pair.TunnelB);
    }

    /// <summary>
    /// <paramref name="count"/> pings from <paramref name="from"/> to <paramref name="to"/> through
    /// the pair's tunnel, each answered within 5 s (with <paramref name="deadline"/>: all within 5 s,
    /// ping's -w, so a handshake may come first); the daemon's log in the message when not.
    /// </summary>
    private static async Task AssertPingsAsync(WireGuardGoPair pair, NetworkNamespace from, string to, int count = 1, bool deadline = false)
    {
        var ping = await from.ExecAsync("ping", ["-c", count.ToString(System.Globalization.CultureInfo.InvariantCulture), deadline ? "-w" : "-W", "5", to],
            timeout: TimeSpan.FromSeconds(15 + 5 * count));
        Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr + await File.ReadAllTextAsync(pair.Daemon.LogFile));
    }

    /// <summary>The daemon's log once it has any of <paramref name="texts"/>, or after 10 s.</summary>
    private static async Task<string> WaitForLogAsync(WireGuardGoPair pair, params string[] texts)
    {
        string log = "";
        for (var waited = System.Diagnostics.Stopwatch.StartNew(); waited.Elapsed < TimeSpan.FromSeconds(10)
            && !texts.Any(text => log.Contains(text, StringComparison.Ordinal)); await Task.Delay(50))
        {
            log = await File.ReadAllTextAsync(pair.Daemon.LogFile);
        }
        return log;
    }

    /// <summary>A new private key in a file of its own for `wg set ... private-key`, deleted when disposed.</summary>
    private sealed class NextKeyFile(string path) : IDisposable
    {
        public string Path { get; } = path;

        public static async Task<NextKeyFile> WriteAsync(WireGuardGoPair pair)
        {
            var file = new NextKeyFile(System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"fzt-{pair.Ours}-next.key"));
            await File.WriteAllTextAsync(file.Path, TestKeys.New().ToBase64());
            return file;
        }

        public void Dispose() => File.Delete(Path);
    }
}
