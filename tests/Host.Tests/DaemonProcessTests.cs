using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Uapi;
using Xunit.Abstractions;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The real daemon (TUN device, actors, UDP socket) as a process in a namespace: foreground and
/// detached, shutdown on SIGTERM, SIGINT and socket removal, service mode, and wg-quick with the
/// userspace variable. Every test removes its namespace, processes, sockets and logs.
/// </summary>
public sealed class DaemonProcessTests(ITestOutputHelper output)
{
    private const int SIGHUP = 1;
    private const int SIGINT = 2;
    private const int SIGTERM = 15;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static string StateFile(string name) => Path.Combine("/run/firezone-tunnel", name + ".json");

    private static string UniqueName() => "fzp" + Guid.NewGuid().ToString("N")[..8];

    [Theory]
    [InlineData(SIGTERM)]
    [InlineData(SIGINT)]
    public async Task A_foreground_daemon_serves_wg_and_stops_cleanly_on_a_signal(int signal)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        // SIGINT at its default disposition: a test run started in the background of a shell
        // without job control (`cmd &`) inherits SIGINT ignored, the daemon would inherit that
        // too, and .NET keeps an inherited ignored SIGINT ignored (the SIGINT case then always failed).
        await using var daemon = DaemonProcess.StartUnder(ns, name, ["env", "--default-signal=INT"],
            "-f", "--reply-poll-us", "250", "--read-moderation-us", "40", "--no-udp-coalescing", "--no-udp-gro", name);
        await daemon.WaitReadyAsync();
        Assert.True(await ns.HasLinkAsync(name));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(daemon.SocketPath));

        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        var privateKey = TestKeys.New();
        var peer = TestKeys.New();
        try
        {
            await File.WriteAllTextAsync(keyFile, privateKey.ToBase64());
            var set = await ProcessRunner.WgAsync("set", name, "private-key", keyFile, "listen-port", "0",
                "peer", peer.ToBase64(), "allowed-ips", "10.44.0.0/24", "endpoint", "127.0.0.1:9");
            Assert.True(set.ExitCode == 0, set.Stderr);
            string dump = (await ProcessRunner.WgAsync("show", name, "dump")).Stdout;
            string[] device = dump.Split('\n')[0].Split('\t');
            Assert.Equal(privateKey.ToBase64(), device[0]);
            Assert.NotEqual("0", device[2]); // a port was chosen
            // Handshake time and transfer depend on whether the engine has tried a handshake yet.
            string peerLine = dump.Split('\n')[1];
            Assert.True(peerLine.StartsWith($"{peer.ToBase64()}\t(none)\t127.0.0.1:9\t10.44.0.0/24\t", StringComparison.Ordinal) && peerLine.EndsWith("\toff", StringComparison.Ordinal), dump);

            var watch = Stopwatch.StartNew();
            daemon.Signal(signal);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            output.WriteLine($"stopped {watch.ElapsedMilliseconds} ms after signal {signal}");
            Assert.False(File.Exists(daemon.SocketPath));
            Assert.False(await ns.HasLinkAsync(name));

            string log = await File.ReadAllTextAsync(daemon.LogFile);
            Assert.DoesNotContain(privateKey.ToBase64(), log);
            Assert.DoesNotContain(privateKey.ToHex(), log);
            Assert.Contains("reply polling up to 250 us, read moderation 40 us", log); // the options reached the tunnel
            Assert.Contains("timer tick 100 ms (SleepingTickScheduler)", log); // ActorTunnelComposition's scheduler took effect
            Assert.Contains("UDP coalescing off", log); // --no-udp-coalescing reached the TUN device
            Assert.Contains("(receive merging off, send merging ", log); // --no-udp-gro reached the socket
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    [Fact]
    public async Task Removing_the_socket_stops_the_daemon_and_closes_the_TUN_device()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        await daemon.WaitReadyAsync();
        File.Delete(daemon.SocketPath);
        Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
        Assert.False(await ns.HasLinkAsync(name));
    }

    /// <summary>
    /// A machine without the TUN device node (no tun module, or a container without /dev/net/tun):
    /// the daemon runs in its own mount namespace with an empty tmpfs over /dev/net, and must say
    /// what is missing and what to do, in one line, and leave nothing behind. Exit code 78
    /// (EX_CONFIG), on which the unit does not restart: only the operator can mend it (it was 1,
    /// which the unit restarted every 2.2 s forever).
    /// </summary>
    [Fact]
    public async Task Without_dev_net_tun_the_daemon_fails_with_one_line_naming_it()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string logFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        try
        {
            // unshare --mount makes the mount private to this process tree: the host keeps its /dev/net/tun.
            var run = await ProcessRunner.RunAsync("unshare", ["--mount", "sh", "-c",
                "mount -t tmpfs tmpfs /dev/net && exec ip netns exec \"$0\" \"$1\" -f \"$2\" --log-file \"$3\"",
                ns.Name, DaemonProcess.Executable, name, logFile], timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(78, run.ExitCode);
            Assert.Equal("firezone-tunnel: /dev/net/tun does not exist: load the tun module (modprobe tun); in a container, give it the device (docker run --device /dev/net/tun)\n", run.Stderr);
            // The JSON log on stdout and in the file: one error line with the reason, and neither
            // the generic host's "Hosting failed to start" with its stack trace nor Akka's
            // "Exiting with [ExitCode:0]" from a process that exits 1.
            foreach (string log in new[] { run.Stdout, await File.ReadAllTextAsync(logFile) })
            {
                Assert.DoesNotContain("   at ", log);
                Assert.DoesNotContain("ExitCode", log);
                var errors = log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
                    .Where(e => e.GetProperty("severity").GetString() is "Error" or "Fatal").ToList();
                Assert.Equal("Cannot start: /dev/net/tun does not exist: load the tun module (modprobe tun); in a container, give it the device (docker run --device /dev/net/tun)", Assert.Single(errors).GetProperty("message").GetString());
                Assert.False(errors[0].TryGetProperty("exception", out _));
            }
            Assert.False(await ns.HasLinkAsync(name));
            Assert.False(File.Exists(UapiSocketPath.For(name)));
            Assert.True(File.Exists("/dev/net/tun"), "the host's TUN device node must be untouched");
        }
        finally
        {
            File.Delete(logFile);
            LeftoverFile.Delete(UapiSocketPath.For(name)); // if the daemon did start before the runner's timeout killed it
        }
    }

    /// <summary>
    /// A start that fails once the log is open (a name a veth holds) said its problem twice to a
    /// person at a terminal: the log's "Cannot start: ..." line on stdout and the plain line on
    /// stderr, both on the screen; and twice in the journal, where stdout and stderr are one stream.
    /// Where stdout and stderr are the same file, the plain line alone says it (at error priority in
    /// the journal); with stdout a pipe (jq) the JSON line stays there, and stderr has the plain one.
    /// </summary>
    [Fact]
    public async Task A_failed_start_says_its_problem_once_where_stdout_and_stderr_are_one()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        var veth = await ns.ExecAsync("ip", ["link", "add", name, "type", "veth", "peer", "name", name + "p"], timeout: Bound);
        Assert.True(veth.ExitCode == 0, veth.Stderr);
        string problem = $"cannot create TUN device {name}: an interface with that name exists and is not a TUN device this daemon can use (see ip -d link show {name}); choose another name or remove it";
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        string journal = Path.Combine(Path.GetTempPath(), $"fzt-journal-{name}");
        var foreground = new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" };
        try
        {
            // A terminal: script(1) gives the daemon one pty for stdout and stderr; its output is the screen.
            var terminal = await ns.ExecAsync("script", ["-qec", $"{DaemonProcess.Executable} -f --log-file {log} {name}", "/dev/null"],
                environment: foreground, timeout: TimeSpan.FromSeconds(30), stdin: "");
            Assert.Equal(1, terminal.ExitCode);
            Assert.Equal(1, terminal.Stdout.Split(problem).Length - 1);
            Assert.Contains("firezone-tunnel: " + problem + "\r\n", terminal.Stdout);

            // The journal, as systemd gives it: stdout and stderr one stream, named by JOURNAL_STREAM.
            await File.WriteAllTextAsync(journal, "");
            var stat = await ProcessRunner.RunAsync("stat", ["-c", "%d:%i", journal], timeout: Bound);
            var journalRun = await ns.ExecAsync("sh", ["-c", "out=$1; shift; exec \"$@\" >>\"$out\" 2>&1", "sh", journal, DaemonProcess.Executable, "-f", "--log-file", log, name],
                environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "", [Logging.JournalStream.Variable] = stat.Stdout.Trim() },
                timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(1, journalRun.ExitCode);
            Assert.Equal("<3>firezone-tunnel: " + problem, Assert.Single(await File.ReadAllLinesAsync(journal), l => l.Contains(problem, StringComparison.Ordinal)));

            // A pipe (jq): the JSON log line on stdout, the plain line on stderr.
            var piped = await ns.ExecAsync(DaemonProcess.Executable, ["-f", "--log-file", log, name], environment: foreground, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(1, piped.ExitCode);
            Assert.Equal($"firezone-tunnel: {problem}\n", piped.Stderr);
            using var error = JsonDocument.Parse(Assert.Single(piped.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains(problem, StringComparison.Ordinal)));
            Assert.Equal("Cannot start: " + problem, error.RootElement.GetProperty("message").GetString());
        }
        finally
        {
            File.Delete(log);
            File.Delete(journal);
        }
    }

    /// <summary>
    /// Under wg-quick the daemon starts bare and `wg setconf` then gives it the key and the peers in
    /// one set; the key starts the tunnel before the set's peers are added, and its line said "with 0
    /// peer(s)", as if the file had none. It now says it has none yet and where they come from; a
    /// tunnel started in service mode says the same of the file's, whose count the "applied" line gives.
    /// </summary>
    [Fact]
    public async Task The_tunnels_start_line_claims_no_peer_count_before_its_peers_are_configured()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.45.0.2/32\n");
        try
        {
            async Task<string> LogOnceAsync(DaemonProcess daemon, string expected)
            {
                using var bound = new CancellationTokenSource(Bound);
                string log;
                while (!(log = await File.ReadAllTextAsync(daemon.LogFile, bound.Token)).Contains(expected, StringComparison.Ordinal))
                {
                    await Task.Delay(50, bound.Token);
                }
                return log;
            }
            string Line(string log, string start) =>
                Assert.Single(log.Split('\n'), l => l.Contains($"\"message\":\"{start}", StringComparison.Ordinal));

            await using (var bare = DaemonProcess.Start(ns, name, "-f", name))
            {
                await bare.WaitReadyAsync();
                var setconf = await ProcessRunner.WgAsync("setconf", name, file);
                Assert.True(setconf.ExitCode == 0, setconf.Stderr);
                string log = await LogOnceAsync(bare, "1 configured");
                string started = Line(log, "Tunnel 1 running");
                Assert.DoesNotContain("0 peer(s)", started);
                Assert.Contains("with no peers yet (they come over the UAPI socket: wg setconf, wg set)", started);
            }
            await using (var service = DaemonProcess.Start(ns, name, "up", file))
            {
                await service.WaitReadyAsync();
                string log = await LogOnceAsync(service, $"{file} applied");
                Assert.DoesNotContain("0 peer(s)", Line(log, "Tunnel 1 running"));
                Assert.Contains("with no peers yet (the configuration file's are added next)", Line(log, "Tunnel 1 running"));
                Assert.Contains($"Configuration {file} applied: 1 peer(s)", log);
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// A start refused because another interface holds the name (a veth's) left a log file named
    /// after that interface behind, although nothing of ours ran, as a second daemon for a name in
    /// use does not (it fails before the log is opened). The file is removed when this start
    /// created it; one that was there before keeps its lines and gains the error line.
    /// </summary>
    [Fact]
    public async Task A_start_refused_for_a_name_another_interface_holds_removes_the_log_file_it_created()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        var veth = await ns.ExecAsync("ip", ["link", "add", name, "type", "veth", "peer", "name", name + "p"], timeout: Bound);
        Assert.True(veth.ExitCode == 0, veth.Stderr);
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        var foreground = new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" };
        try
        {
            var fresh = await ns.ExecAsync(DaemonProcess.Executable, ["-f", "--log-file", log, name], environment: foreground, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(1, fresh.ExitCode);
            Assert.Contains("is not a TUN device", fresh.Stderr);
            Assert.False(File.Exists(log));

            const string Earlier = "{\"message\":\"an earlier run\"}\n";
            await File.WriteAllTextAsync(log, Earlier);
            var again = await ns.ExecAsync(DaemonProcess.Executable, ["-f", "--log-file", log, name], environment: foreground, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(1, again.ExitCode);
            string kept = await File.ReadAllTextAsync(log);
            Assert.StartsWith(Earlier, kept);
            Assert.Contains("Cannot start: cannot create TUN device " + name, kept);
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public async Task An_interface_name_already_taken_fails_with_one_line()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        await using var first = DaemonProcess.Start(ns, name, "-f", name);
        await first.WaitReadyAsync();
        // Same name, other socket directory is impossible from the CLI, so the second daemon meets
        // the first's socket; either way it must fail with one line and leave the first running.
        var second = await ns.ExecAsync(DaemonProcess.Executable, ["-f", name, "--log-file", "/dev/null"], timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(1, second.ExitCode);
        Assert.StartsWith("firezone-tunnel: ", second.Stderr);
        Assert.Single(second.Stderr.TrimEnd('\n').Split('\n'));
        Assert.True(File.Exists(first.SocketPath));
        Assert.Equal(0, (await ProcessRunner.WgAsync("show", name)).ExitCode);
    }

    /// <summary>
    /// A second daemon for a running interface, given the same log file (as both would default to
    /// /var/log/firezone-tunnel/NAME.log), fails with its one line before it opens the log: the
    /// first daemon's log stays whole JSON lines, the first keeps logging to it, and the second
    /// writes nothing else (no log lines, no stack trace).
    /// </summary>
    [Fact]
    public async Task A_second_daemon_for_a_name_in_use_leaves_the_first_ones_log_whole()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        await using var first = DaemonProcess.Start(ns, name, "-f", name);
        await first.WaitReadyAsync();
        // The socket exists a moment before the daemon logs that it runs.
        using (var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while (!(await File.ReadAllTextAsync(first.LogFile, bound.Token)).Contains($"running interface {name}", StringComparison.Ordinal))
            {
                await Task.Delay(50, bound.Token);
            }
        }
        byte[] before = await File.ReadAllBytesAsync(first.LogFile);

        var second = await ns.ExecAsync(DaemonProcess.Executable, ["-f", name, "--log-file", first.LogFile], timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(1, second.ExitCode);
        Assert.Equal($"firezone-tunnel: {first.SocketPath}: socket in use (is another daemon serving this interface?)\n", second.Stderr);
        Assert.Equal("", second.Stdout);
        byte[] between = await File.ReadAllBytesAsync(first.LogFile);
        Assert.Equal(before, between[..before.Length]);

        // The first daemon still serves and logs, after its own lines.
        var set = await ProcessRunner.WgAsync("set", name, "fwmark", "7");
        Assert.True(set.ExitCode == 0, set.Stderr);
        first.Signal(SIGTERM);
        Assert.Equal(0, await first.WaitForExitAsync(Bound));
        byte[] after = await File.ReadAllBytesAsync(first.LogFile);
        Assert.Equal(before, after[..before.Length]);
        Assert.Equal(-1, Array.IndexOf(after, (byte)0));
        var messages = System.Text.Encoding.UTF8.GetString(after).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("message").GetString()).ToList();
        Assert.Contains("UAPI set: fwmark 0x7 changed; 0 peer(s) in the request", messages);
        Assert.Contains($"Interface {name} stopped", messages);
        Assert.DoesNotContain(messages, m => m!.StartsWith("Cannot start", StringComparison.Ordinal)); // the second daemon's
    }

    [Fact]
    public async Task Without_foreground_the_parent_exits_0_once_ready_and_the_daemon_keeps_running()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        DetachedDaemon? daemon = null;
        try
        {
            var parent = await ns.ExecAsync(DaemonProcess.Executable, [name, "--log-file", log],
                environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" }, timeout: TimeSpan.FromSeconds(30));
            // Ready means ready: the socket exists when the parent returns. Its listener's PID is
            // taken before any assertion, so the finally block can stop the daemon whatever fails.
            if (File.Exists(UapiSocketPath.For(name)))
            {
                daemon = DetachedDaemon.FromSocket(UapiSocketPath.For(name));
            }
            Assert.True(parent.ExitCode == 0, parent.Stderr);
            Assert.NotNull(daemon);
            Assert.NotEqual(Environment.ProcessId, daemon.Pid);
            Assert.True(await ns.HasLinkAsync(name));
            Assert.Equal(0, (await ProcessRunner.WgAsync("show", name)).ExitCode);

            // wireguard-go's way to stop a detached daemon: remove its socket. It exits and its TUN goes.
            LeftoverFile.Delete(UapiSocketPath.For(name));
            Assert.True(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)), "the daemon did not exit after its socket was removed");
            Assert.False(await ns.HasLinkAsync(name));
        }
        finally
        {
            // Bounded stop, then SIGKILL by PID: no daemon outlives the test, whatever failed above.
            if (daemon is not null)
            {
                await daemon.DisposeAsync();
            }
            LeftoverFile.Delete(UapiSocketPath.For(name));
            File.Delete(log);
        }
    }

    [Fact]
    public async Task Service_mode_assigns_addresses_and_routes_and_a_gateway_masquerades_until_stopped()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        var privateKey = TestKeys.New();
        var psk = TestKeys.New();
        var peerKey = TestKeys.New();
        await File.WriteAllTextAsync(config, $"""
            [Interface]
            PrivateKey = {privateKey.ToBase64()}
            ListenPort = 0
            Address = 10.55.0.1/24, fd55::1/64
            MTU = 1380
            PostUp = echo accepted and run
            #! Role = gateway

            [Peer]
            PublicKey = {peerKey.ToBase64()}
            PresharedKey = {psk.ToBase64()}
            AllowedIPs = 10.55.0.2/32, 10.66.0.0/16
            #! EcnMode = compatibility
            """);
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", config);
            await daemon.WaitReadyAsync();
            string addresses = (await ns.ExecAsync("ip", ["address", "show", "dev", name])).Stdout;
            Assert.Contains("inet 10.55.0.1/24", addresses);
            Assert.Contains("inet6 fd55::1/64", addresses);
            Assert.Contains("mtu 1380", addresses);
            Assert.Contains("10.66.0.0/16", (await ns.ExecAsync("ip", ["route", "show", "dev", name])).Stdout);
            var table = await ns.ExecAsync("nft", ["list", "table", "inet", "firezone-tunnel-" + name]);
            Assert.Equal(0, table.ExitCode);
            // The gateway's point: traffic from the tunnel leaving by another interface is masqueraded, and forwarded.
            Assert.Contains($"iifname \"{name}\" oifname != \"{name}\" masquerade", table.Stdout);
            Assert.Equal("1", (await ns.ExecAsync("sysctl", ["-n", "net.ipv4.ip_forward"])).Stdout.Trim());
            Assert.Equal("1", (await ns.ExecAsync("sysctl", ["-n", "net.ipv6.conf.all.forwarding"])).Stdout.Trim());

            var show = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["show", name]);
            Assert.Contains("ecn mode: compatibility", show.Stdout);
            Assert.Contains("ecn: 0 ECT sent", show.Stdout);

            // `wg setconf IF <(wg-quick strip IF)` re-creates every peer from a file without the
            // directives: the peer keeps the mode its file gives it (FileEcnModes).
            string stripped = config + ".stripped";
            await File.WriteAllTextAsync(stripped, $"""
                [Interface]
                PrivateKey = {privateKey.ToBase64()}

                [Peer]
                PublicKey = {peerKey.ToBase64()}
                PresharedKey = {psk.ToBase64()}
                AllowedIPs = 10.55.0.2/32, 10.66.0.0/16
                """);
            try
            {
                var setconf = await ProcessRunner.RunAsync("wg", ["setconf", name, stripped], timeout: TimeSpan.FromSeconds(15));
                Assert.True(setconf.ExitCode == 0, setconf.Stderr);
            }
            finally
            {
                File.Delete(stripped);
            }
            Assert.Contains("ecn mode: compatibility", (await ProcessRunner.RunAsync(DaemonProcess.Executable, ["show", name])).Stdout);

            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            Assert.False(await ns.HasLinkAsync(name));
            Assert.NotEqual(0, (await ns.ExecAsync("nft", ["list", "table", "inet", "firezone-tunnel-" + name])).ExitCode);
            Assert.Equal("0", (await ns.ExecAsync("sysctl", ["-n", "net.ipv4.ip_forward"])).Stdout.Trim());

            string log = await File.ReadAllTextAsync(daemon.LogFile);
            Assert.Contains("[#] echo accepted and run (PostUp on line 6)", log);
            Assert.Contains("PostUp: accepted and run", log);
            foreach (var key in new[] { privateKey, psk })
            {
                Assert.DoesNotContain(key.ToBase64(), log);
                Assert.DoesNotContain(key.ToHex(), log);
            }
        }
        finally
        {
            File.Delete(config);
        }
    }

    /// <summary>
    /// `nft flush ruleset` (what Debian's /etc/nftables.conf starts with, so `systemctl reload
    /// nftables` runs it) removed a running gateway's masquerade table, and nothing was masqueraded
    /// from then on, without a word (the service review). The gateway watches the ruleset and adds
    /// its table again, with a Warning; its stop still removes it for good.
    /// </summary>
    [Fact]
    public async Task A_gateway_adds_its_table_again_after_a_ruleset_flush_and_still_removes_it_at_the_stop()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string table = "firezone-tunnel-" + name;
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        await File.WriteAllTextAsync(config, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.57.0.1/24\n#! Role = gateway\n");
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", config);
            await daemon.WaitReadyAsync();
            Assert.Equal(0, (await ns.ExecAsync("nft", ["list", "table", "inet", table])).ExitCode);

            var flush = await ns.ExecAsync("nft", ["flush", "ruleset"]);
            Assert.True(flush.ExitCode == 0, flush.Stderr);
            var listed = await ListTableOnceBackAsync(ns, "inet", table);
            Assert.Contains($"iifname \"{name}\" oifname != \"{name}\" masquerade", listed.Stdout);
            string log = await daemon.WaitForLogAsync("added again");
            Assert.Contains($"nftables table inet {table} was removed by another program", log);

            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            await Task.Delay(InterfaceNetworkSetupTableCheckDelay * 3); // a re-add after the stop would come by now
            Assert.NotEqual(0, (await ns.ExecAsync("nft", ["list", "table", "inet", table])).ExitCode);
            Assert.Equal("0", (await ns.ExecAsync("sysctl", ["-n", "net.ipv4.ip_forward"])).Stdout.Trim());
        }
        finally
        {
            File.Delete(config);
        }
    }

    /// <summary>
    /// A full tunnel's mark tables (wg-quick's, for a strict reverse-path filter) come back after a
    /// ruleset flush (a reload of nftables.service), as a gateway's table does: without them a host
    /// with rp_filter=1 drops the Gateway's datagrams from then on (the diff review, 2026-11-29).
    /// </summary>
    [Fact]
    public async Task A_full_tunnel_adds_its_mark_tables_again_after_a_ruleset_flush_and_removes_them_at_the_stop()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string table = "firezone-tunnel-" + name;
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        await File.WriteAllTextAsync(config, $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            ListenPort = 0
            Address = 10.58.0.1/24, fd58::1/64

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 0.0.0.0/0, ::/0
            """);
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", config);
            await daemon.WaitReadyAsync();
            foreach (var family in new[] { "ip", "ip6" })
            {
                Assert.Equal(0, (await ns.ExecAsync("nft", ["list", "table", family, table])).ExitCode);
            }

            var flush = await ns.ExecAsync("nft", ["flush", "ruleset"]);
            Assert.True(flush.ExitCode == 0, flush.Stderr);
            foreach (var family in new[] { "ip", "ip6" })
            {
                var listed = await ListTableOnceBackAsync(ns, family, table);
                Assert.Contains("meta mark set ct mark", listed.Stdout);
            }
            string log = await daemon.WaitForLogAsync("pass a strict reverse-path filter again");
            Assert.Contains($"nftables table ip {table} was removed by another program", log);

            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            await Task.Delay(InterfaceNetworkSetupTableCheckDelay * 3); // a re-add after the stop would come by now
            Assert.DoesNotContain(table, (await ns.ExecAsync("nft", ["list", "tables"])).Stdout);
        }
        finally
        {
            File.Delete(config);
        }
    }

    /// <summary>`nft list table FAMILY TABLE` once the daemon has added the table again (within <see cref="Bound"/>), else the test fails.</summary>
    private static async Task<ProcessRunner.Result> ListTableOnceBackAsync(NetworkNamespace ns, string family, string table)
    {
        ProcessRunner.Result listed;
        var deadline = DateTime.UtcNow + Bound;
        while ((listed = await ns.ExecAsync("nft", ["list", "table", family, table])).ExitCode != 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        Assert.True(listed.ExitCode == 0, $"table {family} {table} was not added again: " + listed.Stderr);
        return listed;
    }

    private static readonly TimeSpan InterfaceNetworkSetupTableCheckDelay = Network.InterfaceNetworkSetup.TableCheckDelay;

    /// <summary>
    /// An address removed from a running service's interface (`ip address del`, or the kernel's
    /// removal of IPv6 addresses when the link goes down) took the traffic to and from it and the
    /// routes it covered without a line in the log (the service review). Now it is named at
    /// Warning, and at Information when it is back; the stop's own removal of the interface is not
    /// reported.
    /// </summary>
    [Fact]
    public async Task A_removed_address_is_named_in_the_log_and_so_is_its_return()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        await File.WriteAllTextAsync(config, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.58.0.1/24, fd00:58::1/64\n");
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", config);
            await daemon.WaitReadyAsync();
            Assert.Equal(0, (await ns.ExecAsync("ip", ["address", "del", "10.58.0.1/24", "dev", name])).ExitCode);
            string log = await daemon.WaitForLogAsync("Address 10.58.0.1/24 of " + name + " was removed");
            Assert.Contains($"Address 10.58.0.1/24 of {name} was removed", log);
            Assert.Contains($"ip address add 10.58.0.1/24 dev {name}", log);
            Assert.DoesNotContain("fd00:58::1/64 of", log); // still there

            Assert.Equal(0, (await ns.ExecAsync("ip", ["address", "add", "10.58.0.1/24", "dev", name])).ExitCode);
            log = await daemon.WaitForLogAsync($"Address 10.58.0.1/24 is on {name} again");
            Assert.Contains($"Address 10.58.0.1/24 is on {name} again", log);
            Assert.Single(log.Split('\n'), line => line.Contains("10.58.0.1/24 of", StringComparison.Ordinal)); // once, not at every change

            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            Assert.DoesNotContain("fd00:58::1/64 of", await File.ReadAllTextAsync(daemon.LogFile)); // the stop is no news
        }
        finally
        {
            File.Delete(config);
        }
    }

    /// <summary>
    /// Without CAP_NET_ADMIN (a unit whose capabilities were changed) the TUN device cannot be made,
    /// and a restart changes nothing: EX_CONFIG, on which the unit does not restart; it exited 1 and
    /// was restarted every 2.2 s forever (an operator's review).
    /// </summary>
    [Fact]
    public async Task Without_CAP_NET_ADMIN_the_start_fails_once_with_exit_78()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        await File.WriteAllTextAsync(config, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n");
        try
        {
            var result = await ns.ExecAsync("setpriv", ["--bounding-set", "-net_admin", "--inh-caps", "-net_admin", "--",
                DaemonProcess.Executable, "up", "--config", config, "--log-file", log], timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(78, result.ExitCode);
            Assert.Contains("CAP_NET_ADMIN", result.Stderr);
            Assert.False(await ns.HasLinkAsync(name));
        }
        finally
        {
            File.Delete(config);
            File.Delete(log);
            LeftoverFile.Delete(Network.NetworkSetupStateFile.For(name, null).Path);
        }
    }

    /// <summary>
    /// A gateway on a host without nft (an operator's review): the start failed with exit code 1,
    /// which the unit restarts every 2.2 s forever, said nothing of what to install, and the
    /// rollback warned that it could not remove the table nft never made. Now EX_CONFIG (78), on
    /// which the unit does not restart, the line names the package, and the rollback is quiet.
    /// </summary>
    [Fact]
    public async Task A_gateway_without_nft_fails_once_with_exit_78_naming_the_package()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        // A PATH with ip, sysctl, readlink and ls: no nft, whatever the machine has installed.
        string bin = Path.Combine(Path.GetTempPath(), name + "-bin");
        Directory.CreateDirectory(bin);
        foreach (var tool in new[] { "ip", "sysctl", "readlink", "ls" })
        {
            File.CreateSymbolicLink(Path.Combine(bin, tool), new[] { "/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/" }.Select(d => d + tool).First(File.Exists));
        }
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        await File.WriteAllTextAsync(config, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.67.0.1/24\n#! Role = gateway\n");
        try
        {
            var result = await ns.ExecAsync("env", [$"PATH={bin}", DaemonProcess.Executable, "up", "--config", config, "--log-file", log], timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(78, result.ExitCode);
            Assert.Equal("firezone-tunnel: cannot run nft: no such command on PATH (install Debian's nftables)\n", result.Stderr);
            Assert.False(await ns.HasLinkAsync(name));
            Assert.Equal("0", (await ns.ExecAsync("sysctl", ["-n", "net.ipv4.ip_forward"])).Stdout.Trim());
            Assert.DoesNotContain("Could not remove nftables table", await File.ReadAllTextAsync(log));
        }
        finally
        {
            File.Delete(config);
            File.Delete(log);
            LeftoverFile.Delete(Network.NetworkSetupStateFile.For(name, null).Path);
            Directory.Delete(bin, recursive: true);
        }
    }

    /// <summary>
    /// Stopped by SIGTERM or by a hang-up (the terminal or ssh session of a foreground `up` closed):
    /// SIGHUP used to end the process at once, leaving the policy rules, the state file and the
    /// socket behind. The daemon is started with SIGHUP at its default action whatever the test
    /// runner ignores (env --default-signal), as from a terminal.
    /// </summary>
    [Theory]
    [InlineData(SIGTERM)]
    [InlineData(SIGHUP)]
    public async Task Service_mode_routes_a_full_tunnel_by_fwmark_and_policy_rules_until_stopped(int signal)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        await File.WriteAllTextAsync(config, $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            ListenPort = 0
            Address = 10.56.0.1/24
            FwMark = off

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 0.0.0.0/0, ::/0
            """);
        try
        {
            await using var daemon = DaemonProcess.StartUnder(ns, name, ["env", "--default-signal=HUP"], "up", "--config", config);
            await daemon.WaitReadyAsync();
            Assert.True(File.Exists(StateFile(name)));
            Assert.Contains($"default dev {name}", (await ns.ExecAsync("ip", ["-4", "route", "show", "table", "51820"])).Stdout);
            Assert.Contains($"default dev {name}", (await ns.ExecAsync("ip", ["-6", "route", "show", "table", "51820"])).Stdout);
            foreach (var family in new[] { "-4", "-6" })
            {
                string rules = (await ns.ExecAsync("ip", [family, "rule", "show"])).Stdout;
                Assert.Contains("not from all fwmark 0xca6c lookup 51820", rules);
                Assert.Contains("from all lookup main suppress_prefixlength 0", rules);
            }
            // The tunnel's socket carries the mark ("FwMark = off" in the file does not clear it).
            Assert.Contains("fwmark: 0xca6c", (await ProcessRunner.WgAsync("show", name)).Stdout);

            daemon.Signal(signal);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            // The log says a hang-up stopped it (an operator who sent SIGHUP for a reload sees why
            // the tunnel is down); SIGTERM is the ordinary stop and says nothing of the sort.
            string log = await File.ReadAllTextAsync(daemon.LogFile);
            if (signal == SIGHUP)
            {
                Assert.Contains($"SIGHUP received: stopping {name} cleanly", log);
            }
            else
            {
                Assert.DoesNotContain("SIGHUP", log);
            }
            Assert.False(File.Exists(daemon.SocketPath));
            Assert.False(File.Exists(StateFile(name)));
            Assert.Equal("", (await ns.ExecAsync("ip", ["-4", "route", "show", "table", "51820"])).Stdout.Trim());
            foreach (var family in new[] { "-4", "-6" })
            {
                string rules = (await ns.ExecAsync("ip", [family, "rule", "show"])).Stdout;
                Assert.DoesNotContain("fwmark", rules);
                Assert.DoesNotContain("suppress_prefixlength", rules);
            }
        }
        finally
        {
            File.Delete(config);
        }
    }

    /// <summary>
    /// Type=notify (packaging/firezone-tunnel@.service): the daemon tells the service manager
    /// READY=1 only once the interface is up with its address, and STOPPING=1 when it stops. The
    /// test plays the service manager with a datagram socket at NOTIFY_SOCKET, as systemd does.
    /// </summary>
    [Fact]
    public async Task Service_mode_notifies_ready_once_the_interface_is_up_and_stopping_on_stop()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string directory = Directory.CreateTempSubdirectory("fzt-notify").FullName;
        string config = Path.Combine(directory, name + ".conf");
        string notifyPath = Path.Combine(directory, "notify");
        await File.WriteAllTextAsync(config, $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            ListenPort = 0
            Address = 10.57.0.1/24
            """);
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(notifyPath));
        try
        {
            await using var daemon = DaemonProcess.StartAsService(ns, name, notifyPath, "up", "--config", config);

            Assert.Equal("READY=1", await ReceiveNotificationAsync(notify, daemon));
            Assert.True(File.Exists(daemon.SocketPath), "READY=1 before the UAPI socket exists");
            Assert.Contains("inet 10.57.0.1/24", (await ns.ExecAsync("ip", ["address", "show", "dev", name])).Stdout);

            Assert.NotEqual(0, daemon.ChildPid);
            daemon.Signal(SIGTERM);
            Assert.Equal("STOPPING=1", await ReceiveNotificationAsync(notify, daemon));
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound)); // unshare returns the daemon's exit code
            Assert.False(await ns.HasLinkAsync(name));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// A container runs its command as PID 1 of its PID namespace, and the drop-in form
    /// (`firezone-tunnel wg0`, no -f) detached there: PID 1 exited 0 once the child was ready and
    /// the kernel killed the child with it, so the container stopped at once, exit code 0, no
    /// tunnel (wireguard-go does the same). As PID 1 it stays in the foreground and stops on SIGTERM.
    /// </summary>
    [Fact]
    public async Task As_pid_1_of_a_container_it_stays_in_the_foreground_instead_of_detaching()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        await using var daemon = DaemonProcess.StartAsContainer(ns, name, name);

        await daemon.WaitReadyAsync();
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(daemon.HasExited, "PID 1 exited after detaching: the container ended with its daemon");
        Assert.NotEqual(0, daemon.ChildPid);
        Assert.True(await ns.HasLinkAsync(name));

        daemon.Signal(SIGTERM);
        Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
        Assert.False(await ns.HasLinkAsync(name));
        Assert.False(File.Exists(daemon.SocketPath));
    }

    /// <summary>
    /// In a container (PID 1, so the kernel drops a signal the process leaves at its default) an
    /// Endpoint's name that does not resolve yet (no network or DNS: a namespace with loopback only)
    /// is retried with WG_ENDPOINT_RESOLUTION_RETRIES=infinity; a SIGTERM then went unheeded, and
    /// docker stop waited its 10 s for the SIGKILL. The stop now ends the wait.
    /// </summary>
    [Fact]
    public async Task As_pid_1_a_stop_ends_the_wait_for_a_name_to_resolve()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.0.0.1/32\nEndpoint = fz-no-dns-yet.test:51820\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            await using var daemon = DaemonProcess.StartAsContainer(ns, name, new Dictionary<string, string> { ["WG_ENDPOINT_RESOLUTION_RETRIES"] = "infinity" }, "up", "--config", file);
            // The first try failed and it waits: it says so on stderr just before the wait. (A fixed
            // 2.5 s from the start sent the SIGTERM before the wait's handler on a slow start, where
            // PID 1 drops it: a correct daemon then ran on for the whole bound.)
            Assert.True(await daemon.WaitForStderrAsync("; trying again in "), $"it never said it waits for the name: {daemon.StderrSoFar}");
            Assert.False(daemon.HasExited, "it gave up instead of waiting for the name");
            // The line comes just before the wait's handler is in place, and as PID 1 a SIGTERM
            // without a handler is dropped: signal until it ends (a daemon that never heeds one
            // during the wait still fails here).
            int exitCode = -1;
            bool exited = false;
            for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10); !exited && DateTime.UtcNow < deadline;)
            {
                daemon.TrySignal(SIGTERM);
                try
                {
                    exitCode = await daemon.WaitForExitAsync(TimeSpan.FromMilliseconds(500));
                    exited = true;
                }
                catch (OperationCanceledException)
                {
                }
            }
            Assert.True(exited, $"SIGTERM did not stop it within 10 s while it waited for the name to resolve: {daemon.StderrSoFar}");
            Assert.Equal(1, exitCode);
            Assert.Contains("SIGTERM received while waiting to try again", await daemon.Stderr);
            Assert.False(await ns.HasLinkAsync(name)); // nothing created
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static async Task<string> ReceiveNotificationAsync(Socket notify, DaemonProcess daemon)
    {
        var buffer = new byte[4096];
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            int length = await notify.ReceiveAsync(buffer, SocketFlags.None, bound.Token);
            return System.Text.Encoding.UTF8.GetString(buffer, 0, length).Trim();
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no notification within 30 s; daemon stderr so far: {(daemon.Stderr.IsCompleted ? await daemon.Stderr : "(running)")}");
        }
    }

    [Fact]
    public async Task Wg_quick_up_and_down_with_the_userspace_implementation_variable()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string directory = Path.Combine(Path.GetTempPath(), "fzt-" + name);
        Directory.CreateDirectory(directory);
        string config = Path.Combine(directory, name + ".conf");
        var peer = TestKeys.New();
        await File.WriteAllTextAsync(config, $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.77.0.1/24
            ListenPort = 0

            [Peer]
            PublicKey = {peer.ToBase64()}
            AllowedIPs = 10.77.0.2/32, 10.78.0.0/16
            """);
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var environment = new Dictionary<string, string> { ["WG_QUICK_USERSPACE_IMPLEMENTATION"] = DaemonProcess.Executable, ["WG_PROCESS_FOREGROUND"] = "" };
        DetachedDaemon? daemon = null;
        try
        {
            var up = await ns.ExecAsync("wg-quick", ["up", config], environment, TimeSpan.FromSeconds(60));
            output.WriteLine(up.Stderr);
            // The daemon wg-quick started, by PID, before any assertion (see the finally block).
            if (File.Exists(UapiSocketPath.For(name)))
            {
                daemon = DetachedDaemon.FromSocket(UapiSocketPath.For(name));
            }
            Assert.True(up.ExitCode == 0, up.Stderr);
            Assert.NotNull(daemon);
            Assert.Contains("inet 10.77.0.1/24", (await ns.ExecAsync("ip", ["address", "show", "dev", name])).Stdout);
            Assert.Contains("10.78.0.0/16", (await ns.ExecAsync("ip", ["route", "show", "dev", name])).Stdout);
            Assert.Contains($"peer: {peer.ToBase64()}", (await ProcessRunner.WgAsync("show", name)).Stdout);

            // wg-quick down deletes the link; the daemon sees its TUN device go and stops, removing its socket.
            var down = await ns.ExecAsync("wg-quick", ["down", config], environment, TimeSpan.FromSeconds(60));
            Assert.True(down.ExitCode == 0, down.Stderr);
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            while ((await ns.HasLinkAsync(name) || File.Exists(UapiSocketPath.For(name))) && !bound.IsCancellationRequested)
            {
                await Task.Delay(100);
            }
            Assert.False(await ns.HasLinkAsync(name));
            Assert.False(File.Exists(UapiSocketPath.For(name)));
            Assert.True(await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)), "the daemon did not exit after wg-quick down");
        }
        finally
        {
            // Bounded stop, then SIGKILL by PID: no daemon outlives the test, whatever failed above.
            if (daemon is not null)
            {
                await daemon.DisposeAsync();
            }
            LeftoverFile.Delete(UapiSocketPath.For(name));
            File.Delete(Path.Combine("/var/log/firezone-tunnel", name + ".log"));
            Directory.Delete(directory, recursive: true);
        }
    }
}
