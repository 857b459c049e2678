using Firezone.Actors.Host.Logging;
using Firezone.Actors.Host.Uapi;
using Serilog.Events;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// What a wireguard-go administrator runs into when the same set-up starts firezone-tunnel
/// instead: an environment wg-quick passes on unchanged, a hang-up, nohup, a file system the log
/// cannot be written to, a config path that is a directory. Every daemon runs in a namespace of
/// the test's own and is stopped by its PID.
/// </summary>
public sealed class DropInCompatibilityTests
{
    private const int SIGHUP = 1;
    private const int SIGTERM = 15;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);
    private static readonly string Executable = DaemonProcess.Executable;

    private static string UniqueName() => "fzu" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>
    /// LOG_LEVEL is a name many programs read; wireguard-go runs at its default with a word it
    /// does not know, so `LOG_LEVEL=warn wg-quick up wg0` worked with it and must work here: one
    /// line on stderr (said by the parent only, not again by the detached child), exit 0, running.
    /// </summary>
    [Fact]
    public async Task A_LOG_LEVEL_word_that_is_no_level_does_not_stop_a_detached_daemon()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        DetachedDaemon? daemon = null;
        try
        {
            var parent = await ns.ExecAsync(Executable, [name, "--log-file", log],
                environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "", ["LOG_LEVEL"] = "loud" }, timeout: TimeSpan.FromSeconds(30));
            if (File.Exists(UapiSocketPath.For(name)))
            {
                daemon = DetachedDaemon.FromSocket(UapiSocketPath.For(name));
            }
            Assert.True(parent.ExitCode == 0, parent.Stderr);
            Assert.Equal("firezone-tunnel: LOG_LEVEL 'loud' is not trace, debug, info, warning, error or silent: logging at info\n", parent.Stderr);
            Assert.NotNull(daemon);
            Assert.True(await ns.HasLinkAsync(name));
            Assert.Contains("running interface " + name, await File.ReadAllTextAsync(log)); // at info
        }
        finally
        {
            if (daemon is not null)
            {
                await daemon.DisposeAsync();
            }
            LeftoverFile.Delete(UapiSocketPath.For(name));
            File.Delete(log);
        }
    }

    /// <summary>--log-level given on the command line is still checked strictly (a typo there is the user's own).</summary>
    [Fact]
    public async Task A_log_level_option_that_is_no_level_is_still_a_usage_error()
    {
        // A unique name, not wg0: run in the host's namespace, a regression that took the option
        // would start (and detach) a daemon there, and wg0 may be the machine's own tunnel.
        var result = await ProcessRunner.RunAsync(Executable, ["--log-level", "loud", UniqueName()],
            environment: new Dictionary<string, string> { ["LOG_LEVEL"] = "debug" }, timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("firezone-tunnel: unknown log level 'loud': use trace, debug, info, warning, error or silent (see --help)\n", result.Stderr);
    }

    [Theory]
    [InlineData("warn", LogEventLevel.Warning)]
    [InlineData("WARNING", LogEventLevel.Warning)]
    [InlineData("verbose", LogEventLevel.Debug)]
    public void Common_spellings_of_a_level_are_taken(string word, LogEventLevel expected)
    {
        Assert.True(LogOptions.TryParseLevel(word, out var level));
        Assert.Equal(expected, level);
    }

    /// <summary>
    /// wg-quick passes no options, so a default log file that cannot be written (a read-only
    /// /var/log, here a read-only tmpfs over it in a mount namespace of the test's own) must not
    /// stop `wg-quick up`, which works with wireguard-go (no log file at all): the parent says so
    /// in one line naming the file and the reason, exits 0, and the daemon serves.
    /// </summary>
    [Fact]
    public async Task A_default_log_file_that_cannot_be_written_does_not_stop_a_detached_daemon()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        DetachedDaemon? daemon = null;
        try
        {
            var parent = await ns.ExecAsync("unshare", ["-m", "sh", "-c", $"mount -t tmpfs -o ro none /var/log && exec {Executable} {name}"],
                environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" }, timeout: TimeSpan.FromSeconds(30));
            if (File.Exists(UapiSocketPath.For(name)))
            {
                daemon = DetachedDaemon.FromSocket(UapiSocketPath.For(name));
            }
            Assert.True(parent.ExitCode == 0, parent.Stderr);
            Assert.Equal($"firezone-tunnel: /var/log/firezone-tunnel/{name}.log: cannot create the log file's directory /var/log/firezone-tunnel: Read-only file system; running without a log file\n", parent.Stderr);
            Assert.NotNull(daemon);
            Assert.Equal(0, (await ProcessRunner.WgAsync("show", name)).ExitCode);
            Assert.False(File.Exists($"/var/log/firezone-tunnel/{name}.log"));
        }
        finally
        {
            if (daemon is not null)
            {
                await daemon.DisposeAsync();
            }
            LeftoverFile.Delete(UapiSocketPath.For(name));
        }
    }

    /// <summary>
    /// The same in the foreground at a terminal: the notice was said twice there, as the log's
    /// "Running without a log file" line on stdout and as the plain line on stderr. Once now (the
    /// plain line), as a failed start's problem is said once (StandardErrorProblem). script(1)
    /// gives the daemon one pty for stdout and stderr (and an empty stdin, not the test runner's);
    /// the daemon stays in the pty's foreground process group and the test stops it with SIGTERM
    /// by its PID once its socket is up.
    /// </summary>
    [Fact]
    public async Task A_default_log_file_that_cannot_be_written_is_said_once_at_a_terminal()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string pidFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.pid");
        try
        {
            // exec keeps the shell's PID: the PID written is the daemon's.
            var run = ns.ExecAsync("script", ["-qec", $"unshare -m sh -c 'mount -t tmpfs -o ro none /var/log && echo $$ > {pidFile} && exec {Executable} -f {name}'", "/dev/null"],
                environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" }, timeout: TimeSpan.FromSeconds(30), stdin: "");
            var terminal = await PidFileDaemon.StopOnceServingAsync(run, name, pidFile);
            Assert.True(terminal.ExitCode == 0, terminal.Stdout + terminal.Stderr);
            Assert.Contains("running interface", terminal.Stdout);
            Assert.Equal(1, terminal.Stdout.Split("Read-only file system").Length - 1);
            Assert.Contains($"firezone-tunnel: /var/log/firezone-tunnel/{name}.log: cannot create the log file's directory /var/log/firezone-tunnel: Read-only file system; running without a log file\r\n", terminal.Stdout);
        }
        finally
        {
            File.Delete(pidFile);
            LeftoverFile.Delete(UapiSocketPath.For(name));
        }
    }

    /// <summary>A --log-file the user named and that cannot be opened stays an error: one line naming it, exit 78 (EX_CONFIG: the unit does not restart on it), nothing created.</summary>
    [Fact]
    public async Task A_log_file_option_whose_directory_cannot_be_made_is_one_line_naming_it()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        // A regular file where the directory should be: mkdir(2) fails (ENOTDIR/EEXIST), even for root.
        string blocker = Path.Combine(Path.GetTempPath(), $"fzt-{name}-file");
        await File.WriteAllTextAsync(blocker, "");
        try
        {
            var result = await ns.ExecAsync(Executable, ["-f", name, "--log-file", Path.Combine(blocker, "sub", "x.log")], timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(Cli.CommandLine.ConfigMistakeExitCode, result.ExitCode);
            Assert.StartsWith($"firezone-tunnel: {blocker}/sub/x.log: cannot create the log file's directory {blocker}/sub: ", result.Stderr);
            Assert.Single(result.Stderr.TrimEnd('\n').Split('\n'));
            Assert.False(File.Exists(UapiSocketPath.For(name)));
            Assert.False(await ns.HasLinkAsync(name));
        }
        finally
        {
            File.Delete(blocker);
            LeftoverFile.Delete(UapiSocketPath.For(name));
        }
    }

    /// <summary>
    /// Under nohup (SIGHUP ignored when the daemon starts) a hang-up must not stop it, as nohup
    /// promises: it keeps serving, and SIGTERM still stops it cleanly.
    /// </summary>
    [Fact]
    public async Task Under_nohup_a_hang_up_does_not_stop_the_daemon()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        await using var daemon = DaemonProcess.StartUnder(ns, name, ["env", "--ignore-signal=HUP"], "-f", name);
        await daemon.WaitReadyAsync();
        daemon.Signal(SIGHUP);
        // Two UAPI round trips after the signal: a daemon stopping on it would be removing its socket.
        Assert.Equal(0, (await ProcessRunner.WgAsync("show", name)).ExitCode);
        Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "listen-port", "0")).ExitCode);
        Assert.True(File.Exists(daemon.SocketPath));
        Assert.DoesNotContain($"Interface {name} stopped", await File.ReadAllTextAsync(daemon.LogFile));
        daemon.Signal(SIGTERM);
        Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
    }

    [Fact]
    public async Task A_config_path_that_is_a_directory_is_named_as_one()
    {
        var directory = Directory.CreateTempSubdirectory("fzt-conf");
        try
        {
            var result = await ProcessRunner.RunAsync(Executable, ["up", "--config", directory.FullName, "--interface", UniqueName()], timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(Cli.CommandLine.ConfigMistakeExitCode, result.ExitCode);
            Assert.Equal($"firezone-tunnel: {directory.FullName}: cannot read the file: is a directory, not a configuration file\n", result.Stderr);
        }
        finally
        {
            directory.Delete();
        }
    }

    [Fact]
    public async Task A_missing_config_file_says_no_such_file()
    {
        string file = Path.Combine(Path.GetTempPath(), UniqueName() + ".conf");
        var result = await ProcessRunner.RunAsync(Executable, ["up", "--config", file], timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(Cli.CommandLine.ConfigMistakeExitCode, result.ExitCode);
        Assert.Equal($"firezone-tunnel: {file}: cannot read the file: no such file\n", result.Stderr);
    }

    /// <summary>
    /// `firezone-tunnel show` on an interface wireguard-go serves (both live in
    /// /var/run/wireguard): wireguard-go closes the connection on fz_get, which used to read as
    /// "the daemon closed the connection without an errno line".
    /// </summary>
    [Fact]
    public async Task Show_of_a_wireguard_go_interface_points_to_wg_show()
    {
        await using var go = await WireGuardGoUapi.StartAsync();
        var result = await ProcessRunner.RunAsync(Executable, ["show", go.Name], timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"firezone-tunnel: {go.Name}: its daemon does not answer fz_get (not firezone-tunnel; wireguard-go?): use wg show {go.Name}\n", result.Stderr);
    }

    /// <summary>
    /// Service mode with a ListenPort another socket holds: the one line names the file and the
    /// line the port came from (it said only "UDP port N is already in use"), exit 1, nothing left.
    /// </summary>
    [Fact]
    public async Task Service_mode_names_the_ListenPort_line_when_the_port_is_taken()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        var start = new System.Diagnostics.ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", ns.Name, "python3", "-c",
            "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',0)); print(s.getsockname()[1], flush=True); sys.stdin.read()"])
        {
            start.ArgumentList.Add(a);
        }
        using var holder = System.Diagnostics.Process.Start(start)!;
        try
        {
            using var bound = new CancellationTokenSource(Bound);
            string port = (await holder.StandardOutput.ReadLineAsync(bound.Token))!.Trim();
            await File.WriteAllTextAsync(config, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nListenPort = {port}\n");
            var result = await ns.ExecAsync(Executable, ["up", "--config", config, "--log-file", log], timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(1, result.ExitCode);
            Assert.Equal($"firezone-tunnel: {config}:3: ListenPort: UDP port {port} is already in use\n", result.Stderr);
            Assert.False(File.Exists(UapiSocketPath.For(name)));
            Assert.False(await ns.HasLinkAsync(name));
        }
        finally
        {
            holder.Kill();
            await holder.WaitForExitAsync();
            File.Delete(config);
            File.Delete(log);
            LeftoverFile.Delete(UapiSocketPath.For(name));
        }
    }

    /// <summary>
    /// `wg-quick down wg0` on an interface `firezone-tunnel up` serves: wg-quick deletes the
    /// policy rules and the link (the kernel takes the routes with it), then the daemon stops. Its
    /// undo finds them gone: exit 0 and no Warning (it logged five "Could not undo" warnings).
    /// </summary>
    [Fact]
    public async Task A_service_stopped_the_way_wg_quick_down_does_it_exits_0_without_warnings()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        await File.WriteAllTextAsync(config, $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            ListenPort = 0
            Address = 10.57.0.1/24, fd57::1/64

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 0.0.0.0/0, ::/0
            """);
        try
        {
            // 0600 as an operator keeps it: a file others can read is a Warning of its own.
            File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", config);
            await daemon.WaitReadyAsync();
            // wg-quick's del_if for a default-route interface, in its order.
            foreach (var family in new[] { "-4", "-6" })
            {
                Assert.Equal(0, (await ns.ExecAsync("ip", [family, "rule", "delete", "table", "51820"])).ExitCode);
                Assert.Equal(0, (await ns.ExecAsync("ip", [family, "rule", "delete", "table", "main", "suppress_prefixlength", "0"])).ExitCode);
            }
            Assert.Equal(0, (await ns.ExecAsync("ip", ["link", "delete", "dev", name])).ExitCode);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));

            var severities = new List<string>();
            foreach (var line in await File.ReadAllLinesAsync(daemon.LogFile))
            {
                using var json = System.Text.Json.JsonDocument.Parse(line);
                string severity = json.RootElement.GetProperty("severity").GetString()!;
                Assert.True(severity is not ("Warning" or "Error"), line);
                severities.Add(severity);
            }
            Assert.Contains("Information", severities);
            Assert.Contains("Routing setting already removed", await File.ReadAllTextAsync(daemon.LogFile));
            Assert.False(File.Exists(Path.Combine("/run/firezone-tunnel", name + ".json")));
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Theory]
    [InlineData("ip -4 route delete 0.0.0.0/0 dev wg0 table 51820: Cannot find device \"wg0\"", true)]
    [InlineData("ip -4 rule delete not fwmark 51820 table 51820: RTNETLINK answers: No such file or directory", true)]
    [InlineData("ip -4 route delete 10.0.0.0/8 dev wg0 table 7: RTNETLINK answers: No such process", true)]
    [InlineData("ip -4 rule delete table main suppress_prefixlength 0: RTNETLINK answers: Operation not permitted", false)]
    [InlineData("ip -4 route delete 10.0.0.0/8 dev wg0: did not finish within 10 s", false)]
    public void Only_an_undo_that_finds_its_setting_gone_counts_as_already_undone(string problem, bool expected) =>
        Assert.Equal(expected, Firezone.Actors.Host.Network.InterfaceNetworkSetup.IsAlreadyUndone(problem));

    /// <summary>
    /// `systemctl reload` of a full-tunnel service runs `wg syncconf NAME <(wg-quick strip FILE)`;
    /// for a file without FwMark, wg sends fwmark=0 (setconf sends every key a file leaves out),
    /// which cleared the mark the service chose for its policy rules, so the tunnel's own datagrams
    /// were routed into the tunnel and it went dead. The mark stays; peers are still synced.
    /// </summary>
    [Fact]
    public async Task A_reload_of_a_full_tunnel_service_keeps_the_fwmark_its_rules_need()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        string stripped = Path.Combine(Path.GetTempPath(), name + ".stripped");
        var peer = TestKeys.New().ToBase64();
        var added = TestKeys.New().ToBase64();
        await File.WriteAllTextAsync(config, $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            ListenPort = 0
            Address = 10.58.0.1/24

            [Peer]
            PublicKey = {peer}
            AllowedIPs = 0.0.0.0/0, ::/0
            """);
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", config);
            await daemon.WaitReadyAsync();
            Assert.Equal("0xca6c\n", (await ProcessRunner.WgAsync("show", name, "fwmark")).Stdout);

            // The edit the reload is for: one more peer.
            await File.AppendAllTextAsync(config, $"\n[Peer]\nPublicKey = {added}\nAllowedIPs = 10.58.0.2/32\n");
            var strip = await ProcessRunner.RunAsync("wg-quick", ["strip", config], timeout: TimeSpan.FromSeconds(15));
            Assert.True(strip.ExitCode == 0, strip.Stderr);
            Assert.DoesNotContain("FwMark", strip.Stdout);
            await File.WriteAllTextAsync(stripped, strip.Stdout);
            var sync = await ProcessRunner.WgAsync("syncconf", name, stripped);
            Assert.True(sync.ExitCode == 0, sync.Stderr);

            Assert.Equal("0xca6c\n", (await ProcessRunner.WgAsync("show", name, "fwmark")).Stdout);
            Assert.Contains(added, (await ProcessRunner.WgAsync("show", name, "peers")).Stdout);
            Assert.Contains("not from all fwmark 0xca6c lookup 51820", (await ns.ExecAsync("ip", ["-4", "rule", "show"])).Stdout);
        }
        finally
        {
            File.Delete(config);
            File.Delete(stripped);
        }
    }
}
