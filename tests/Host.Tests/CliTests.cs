using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>The firezone-tunnel executable as a user runs it.</summary>
public sealed class CliTests
{
    private static readonly string Executable = Path.Combine(AppContext.BaseDirectory, "firezone-tunnel");

    private static Task<ProcessRunner.Result> RunAsync(params string[] arguments) =>
        ProcessRunner.RunAsync(Executable, arguments, environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" }, timeout: TimeSpan.FromSeconds(30));

    [Fact]
    public async Task Help_lists_the_commands_and_options()
    {
        var result = await RunAsync("--help");
        Assert.Equal(0, result.ExitCode);
        foreach (var expected in new[] { "Usage:", "INTERFACE", "-f, --foreground", "--log-file", "--log-format", "--reply-poll-us", "--read-moderation-us", "--no-udp-coalescing", "--no-udp-gro", "--ecn-mode", "up", "show", "--version" })
        {
            Assert.Contains(expected, result.Stdout);
        }
        var up = await RunAsync("up", "--help");
        Assert.Equal(0, up.ExitCode);
        Assert.Contains("-c, --config", up.Stdout);
    }

    [Fact]
    public async Task Show_lists_only_its_own_options_and_up_the_daemons()
    {
        var show = await RunAsync("show", "--help");
        Assert.Equal(0, show.ExitCode);
        foreach (var daemonOnly in new[] { "--log-file", "--log-level", "--log-format", "--reply-poll-us", "--read-moderation-us", "--no-udp-coalescing", "--no-udp-gro" })
        {
            Assert.DoesNotContain(daemonOnly, show.Stdout);
        }
        var up = await RunAsync("up", "--help");
        foreach (var daemon in new[] { "--log-file", "--log-level", "--log-format", "--reply-poll-us", "--read-moderation-us", "--no-udp-coalescing", "--no-udp-gro" })
        {
            Assert.Contains(daemon, up.Stdout);
        }
    }

    /// <summary>
    /// show and save refuse an interface before them ("show takes the interface after it"), yet
    /// their help listed the root's INTERFACE (the TUN interface to create) in the usage line and
    /// as a second &lt;INTERFACE&gt; argument beside their own. up takes a name before it, so its help keeps it.
    /// </summary>
    [Theory]
    [InlineData("show", "  firezone-tunnel show [<INTERFACE>] [options]\n")]
    [InlineData("save", "  firezone-tunnel save <INTERFACE> [options]\n")]
    public async Task Show_and_save_help_lists_only_their_own_INTERFACE(string command, string usage)
    {
        var help = await RunAsync(command, "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("Usage:\n" + usage, help.Stdout);
        Assert.DoesNotContain("The TUN interface to create", help.Stdout);
        Assert.Single(help.Stdout.Split('\n'), l => l.StartsWith("  <INTERFACE>", StringComparison.Ordinal));
        Assert.Contains("-?, -h, --help", help.Stdout);
        var root = await RunAsync("--help");
        Assert.Contains("The TUN interface to create", root.Stdout);
        // The Commands section brackets what the commands' own usage lines bracket (it listed `show <INTERFACE>`).
        Assert.Contains("\n  up [<CONFIG_FILE | INTERFACE>]  Service mode: ", root.Stdout);
        Assert.Contains("\n  show [<INTERFACE>]              Show an interface's peers", root.Stdout);
        Assert.Contains("\n  save <INTERFACE>                Write a running interface's", root.Stdout);
        var up = await RunAsync("up", "--help");
        Assert.Contains("firezone-tunnel [<INTERFACE>] up", up.Stdout);
    }

    /// <summary>The root help's Commands section laid out again: its column moves to fit, wrapped descriptions follow it, the rest is untouched.</summary>
    [Fact]
    public void Optional_arguments_are_bracketed_in_the_commands_section_with_the_column_moved()
    {
        var optional = new System.CommandLine.Command("show") { new System.CommandLine.Argument<string>("IF") { Arity = System.CommandLine.ArgumentArity.ZeroOrOne } };
        var required = new System.CommandLine.Command("save") { new System.CommandLine.Argument<string>("IF") };
        string help = "Options:\n  -h  Help\n\nCommands:\n  show <IF>  Shows\n             more\n  save <IF>  Saves\n\n";
        Assert.Equal("Options:\n  -h  Help\n\nCommands:\n  show [<IF>]  Shows\n               more\n  save <IF>    Saves\n\n",
            Firezone.Actors.Host.Cli.SubcommandHelp.BracketOptionalArguments(help, [optional, required]));
    }

    [Theory]
    [InlineData(new[] { "x1", "up", "--config", "x.conf", "-i", "x2" }, "firezone-tunnel: two interface names, 'x1' and --interface 'x2': give one")]
    [InlineData(new[] { "a/b", "up", "--config", "x.conf" }, "firezone-tunnel: 'a/b' is not a valid interface name (1 to 15 characters, no '/' or spaces)")]
    [InlineData(new[] { "up", "--config", "/tmp/much-too-long-file-name.conf" }, "firezone-tunnel: 'much-too-long-file-name', the configuration file's name without .conf, is not a valid interface name (1 to 15 characters, no '/' or spaces): name the file INTERFACE.conf, as wg-quick wants it, or give --interface NAME")]
    [InlineData(new[] { "wg*", "up", "--config", "x.conf" }, "firezone-tunnel: 'wg*' cannot be named in nftables rules (no '\"', '\\' or '*'): give --interface NAME or rename the file, with letters, digits and _=+.- as wg-quick wants")]
    [InlineData(new[] { "up", "--config", "/tmp/a\"b.conf" }, "firezone-tunnel: 'a\"b' cannot be named in nftables rules (no '\"', '\\' or '*'): give --interface NAME or rename the file, with letters, digits and _=+.- as wg-quick wants")]
    [InlineData(new[] { "up", "--check", "--config", "x.conf", "--log-level", "loud" }, "firezone-tunnel: unknown log level 'loud': use trace, debug, info, warning, error or silent (see --help)")]
    [InlineData(new[] { "up", "--check", "--config", "x.conf", "--reply-poll-us", "100001" }, "firezone-tunnel: --reply-poll-us / FIREZONE_REPLY_POLL_US '100001' is not a number of microseconds from 0 to 100000")]
    [InlineData(new[] { "up" }, "firezone-tunnel: up needs a configuration: up wg0 (reads /etc/wireguard/wg0.conf, as wg-quick up), up FILE or up --config FILE (see --help)")]
    [InlineData(new[] { "up", "wg0", "--config", "x.conf" }, "firezone-tunnel: two configurations, 'wg0' and --config 'x.conf': give one")]
    [InlineData(new[] { "wg0", "show", "wg0" }, "firezone-tunnel: show takes the interface after it: firezone-tunnel show wg0")]
    [InlineData(new[] { "--log-level", "loud", "wg0" }, "firezone-tunnel: unknown log level 'loud': use trace, debug, info, warning, error or silent (see --help)")]
    [InlineData(new[] { "--ecn-mode", "on", "wg0" }, "firezone-tunnel: --ecn-mode (or FIREZONE_ECN_MODE) 'on' is not normal, compatibility or off")]
    [InlineData(new[] { "--ecn-mode", "off", "up", "--config", "x.conf" }, "firezone-tunnel: --ecn-mode and FIREZONE_ECN_MODE are for a daemon that wg configures; up takes the ECN mode from the file: #! EcnMode = normal, compatibility or off under [Interface] (every peer) or under a [Peer]")]
    [InlineData(new[] { "--log-file", "", "wg0" }, "firezone-tunnel: --log-file is empty: give the log file's path (see --help)")]
    public async Task Usage_mistakes_around_the_interface_name_are_one_line_and_exit_2(string[] arguments, string expected)
    {
        var result = await RunAsync(arguments);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal(expected + "\n", result.Stderr);
    }

    /// <summary>
    /// wg-quick strips a file's <c>#! EcnMode</c> before <c>wg setconf</c>, so a daemon it starts
    /// ran every peer in normal mode with no way to choose another: <c>--ecn-mode</c> (or
    /// FIREZONE_ECN_MODE, which reaches the daemon under wg-quick) gives every peer wg creates its mode.
    /// </summary>
    [Theory]
    [InlineData("option")]
    [InlineData("environment")]
    public async Task Ecn_mode_gives_every_peer_wg_creates_its_mode(string how)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        await using var daemon = how == "option"
            ? DaemonProcess.Start(ns, name, "-f", "--ecn-mode", "compatibility", name)
            : DaemonProcess.StartUnder(ns, name, ["env", "FIREZONE_ECN_MODE=compatibility"], "-f", name);
        await daemon.WaitReadyAsync();
        string peer = TestKeys.New().ToBase64();
        var set = await ns.ExecAsync("wg", ["set", name, "peer", peer, "allowed-ips", "10.32.0.1/32"], timeout: TimeSpan.FromSeconds(10));
        Assert.True(set.ExitCode == 0, set.Stderr);
        var show = await ProcessRunner.RunAsync(Executable, ["show", name], timeout: TimeSpan.FromSeconds(10));
        Assert.Equal(0, show.ExitCode);
        Assert.Contains("ecn mode: compatibility", show.Stdout);
    }

    /// <summary>
    /// A flood of datagrams that are no WireGuard message left no trace outside the metrics (the
    /// flood review: 2.3 million datagrams, not a log line, nothing in show): show now says what the
    /// tunnel dropped before any peer saw it.
    /// </summary>
    [Fact]
    public async Task Show_says_what_the_tunnel_dropped_before_any_peer_saw_it()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        await daemon.WaitReadyAsync();
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        try
        {
            await File.WriteAllTextAsync(keyFile, TestKeys.New().ToBase64());
            var set = await ProcessRunner.WgAsync("set", name, "private-key", keyFile, "listen-port", "51998",
                "peer", TestKeys.New().ToBase64(), "allowed-ips", "10.33.0.1/32");
            Assert.True(set.ExitCode == 0, set.Stderr);
            var quiet = await ProcessRunner.RunAsync(Executable, ["show", name], timeout: TimeSpan.FromSeconds(10));
            Assert.True(!quiet.Stdout.Contains("dropped:"), quiet.Stdout);

            // 20 datagrams of no WireGuard message type, 5 transport data messages for no session.
            var sent = await ns.ExecAsync("python3", ["-c",
                "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
                "for i in range(20): s.sendto(bytes([9]) * 40, ('127.0.0.1', 51998))\n" +
                "for i in range(5): s.sendto(bytes([4, 0, 0, 0, 1, 2, 3, 4]) + bytes(40), ('127.0.0.1', 51998))\n"],
                timeout: TimeSpan.FromSeconds(10));
            Assert.True(sent.ExitCode == 0, sent.Stderr);
            string expected = "  dropped: 20 datagrams that are no WireGuard message, 5 datagrams for no session (unknown receiver index)\n";
            string shown = "";
            for (var watch = System.Diagnostics.Stopwatch.StartNew(); watch.Elapsed < TimeSpan.FromSeconds(10) && !shown.Contains(expected); await Task.Delay(100))
            {
                var show = await ProcessRunner.RunAsync(Executable, ["show", name], timeout: TimeSpan.FromSeconds(10));
                Assert.Equal(0, show.ExitCode);
                shown = show.Stdout;
            }
            Assert.Contains(expected, shown);
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    [Fact]
    public async Task Up_takes_the_interface_named_before_it_over_the_files_name()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = Path.Combine(Path.GetTempPath(), UapiServerFixture.UniqueName() + ".conf");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n");
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, name, "up", "--config", file);
            await daemon.WaitReadyAsync();
            var link = await ns.ExecAsync("ip", ["link", "show", name], timeout: TimeSpan.FromSeconds(10));
            Assert.True(link.ExitCode == 0, link.Stderr);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// wg-quick up warns "`FILE' is world accessible" when the file and its directory both give
    /// others access: the file holds the PrivateKey. The service read such a file in silence.
    /// </summary>
    [Fact]
    public async Task Up_warns_like_wg_quick_when_the_config_file_is_world_accessible()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string directory = Path.Combine(Path.GetTempPath(), "fz-access-" + name);
        Directory.CreateDirectory(directory);
        string file = Path.Combine(directory, name + ".conf");
        string key = TestKeys.New().ToBase64();
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {key}\n");
        try
        {
            File.SetUnixFileMode(directory, (UnixFileMode)0x1ed); // 0755
            File.SetUnixFileMode(file, (UnixFileMode)0x1a4); // 0644
            await using (var daemon = DaemonProcess.Start(ns, name, "up", "--config", file))
            {
                await daemon.WaitReadyAsync();
                string log = await File.ReadAllTextAsync(daemon.LogFile);
                Assert.Contains(file + ": " + Config.ConfigFileAccess.WorldAccessibleNote, log);
                Assert.DoesNotContain(key, log);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>wg-quick's test: the file's and its directory's bits for others, symlinks resolved.</summary>
    [Fact]
    public void World_access_needs_both_the_file_and_its_directory_open_to_others_as_wg_quick_tests_it()
    {
        string directory = Directory.CreateTempSubdirectory("fz-access-").FullName;
        try
        {
            string file = Path.Combine(directory, "wg0.conf");
            File.WriteAllText(file, "");
            string link = Path.Combine(directory, "link.conf");
            File.CreateSymbolicLink(link, file);
            File.SetUnixFileMode(file, (UnixFileMode)0x1a4); // 0644
            File.SetUnixFileMode(directory, (UnixFileMode)0x1c0); // 0700: wg-quick is silent
            Assert.False(Config.ConfigFileAccess.IsWorldAccessible(file));
            File.SetUnixFileMode(directory, (UnixFileMode)0x1ed); // 0755
            Assert.True(Config.ConfigFileAccess.IsWorldAccessible(file));
            Assert.True(Config.ConfigFileAccess.IsWorldAccessible(link));
            File.SetUnixFileMode(file, (UnixFileMode)0x180); // 0600
            Assert.False(Config.ConfigFileAccess.IsWorldAccessible(file));
            Assert.False(Config.ConfigFileAccess.IsWorldAccessible(Path.Combine(directory, "missing.conf")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Version_prints_the_assembly_version()
    {
        var result = await RunAsync("--version");
        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("0.1.0", result.Stdout);
        // The log's start line says the same (with the commit), for a bug report to name the build:
        // it said "0.1.0" alone (an operator's review).
        Assert.Equal(result.Stdout.Trim(), Cli.CommandLine.Version);
    }

    [Fact]
    public async Task A_bad_config_file_exits_non_zero_with_one_line_and_leaves_nothing_behind()
    {
        string name = UapiServerFixture.UniqueName();
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        string key = TestKeys.New().ToBase64();
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {key}\n\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.0.0.0/99\n");
        try
        {
            var result = await RunAsync("up", "--config", file);
            Assert.Equal(Cli.CommandLine.ConfigMistakeExitCode, result.ExitCode);
            Assert.Equal($"firezone-tunnel: {file}:6: AllowedIPs: an entry is not a CIDR prefix (address/length)\n", result.Stderr);
            Assert.DoesNotContain(key, result.Stdout + result.Stderr);
            Assert.False(File.Exists(UapiSocketPath.For(name)));
            Assert.False(File.Exists(Path.Combine("/var/log/firezone-tunnel", name + ".log")));
            var link = await ProcessRunner.RunAsync("ip", ["link", "show", name], timeout: TimeSpan.FromSeconds(10));
            Assert.NotEqual(0, link.ExitCode);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>As wg-quick up: an interface name stands for /etc/wireguard/NAME.conf, anything else is a path.</summary>
    [Theory]
    [InlineData("wg0", "/etc/wireguard/wg0.conf")]
    [InlineData("a.b-c_d=e+f", "/etc/wireguard/a.b-c_d=e+f.conf")]
    [InlineData("wg0.conf", "/etc/wireguard/wg0.conf.conf")]
    [InlineData("./wg0.conf", "./wg0.conf")]
    [InlineData("/srv/vpn/wg0.conf", "/srv/vpn/wg0.conf")]
    [InlineData("much-too-long-name", "much-too-long-name")]
    public void Up_reads_its_argument_as_wg_quick_up_does(string argument, string path) =>
        Assert.Equal(path, Cli.CommandLine.WgQuickConfigPath(argument));

    [Fact]
    public async Task Up_with_an_interface_name_reads_its_file_in_etc_wireguard()
    {
        string name = UapiServerFixture.UniqueName();
        var result = await RunAsync("up", name);
        Assert.Equal(Cli.CommandLine.ConfigMistakeExitCode, result.ExitCode);
        Assert.Equal($"firezone-tunnel: /etc/wireguard/{name}.conf: cannot read the file: no such file\n", result.Stderr);
    }

    /// <summary>
    /// Found by running <c>firezone-tunnel up wg0.conf</c> in the file's directory: as wg-quick, a
    /// bare name means /etc/wireguard/NAME.conf, so it read /etc/wireguard/wg0.conf.conf and said
    /// only "no such file", with the file the user meant right there.
    /// </summary>
    [Fact]
    public async Task Up_of_a_bare_file_name_in_this_directory_says_to_write_it_as_a_path()
    {
        // A name short enough that NAME.conf is one to wg-quick too (15 characters at most).
        string name = "fz" + Guid.NewGuid().ToString("N")[..6];
        string directory = Directory.CreateTempSubdirectory("fz-up-").FullName;
        await File.WriteAllTextAsync(Path.Combine(directory, name + ".conf"), $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n");
        try
        {
            var result = await ProcessRunner.RunAsync(Executable, ["up", name + ".conf"], timeout: TimeSpan.FromSeconds(30), workingDirectory: directory,
                environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" });
            Assert.Equal(Cli.CommandLine.ConfigMistakeExitCode, result.ExitCode);
            Assert.Equal($"firezone-tunnel: /etc/wireguard/{name}.conf.conf: cannot read the file: no such file (a bare name means /etc/wireguard/NAME.conf, as in wg-quick up: for the file in this directory, give ./{name}.conf)\n", result.Stderr);
            Assert.False(File.Exists(UapiSocketPath.For(name)));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Up_takes_the_file_after_it_as_wg_quick_up_does()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.77.0.1/24\n");
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", file);
            await daemon.WaitReadyAsync();
            var address = await ns.ExecAsync("ip", ["-o", "address", "show", "dev", name], timeout: TimeSpan.FromSeconds(10));
            Assert.True(address.ExitCode == 0, address.Stderr);
            Assert.Contains("10.77.0.1/24", address.Stdout);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_missing_config_file_is_named()
    {
        string file = Path.Combine(Path.GetTempPath(), UapiServerFixture.UniqueName() + ".conf");
        var result = await RunAsync("up", "--config", file);
        Assert.Equal(Cli.CommandLine.ConfigMistakeExitCode, result.ExitCode);
        Assert.StartsWith($"firezone-tunnel: {file}: cannot read the file", result.Stderr);
        Assert.Single(result.Stderr.TrimEnd('\n').Split('\n'));
    }

    [Theory]
    [InlineData("up", "--config", "x.conf", "--interface", "a/b")]
    [InlineData("up", "--config", "x.conf", "--interface", "much-too-long-interface-name")]
    [InlineData("show", "../etc")]
    public async Task Bad_interface_names_are_refused_before_anything_happens(params string[] arguments)
    {
        var result = await RunAsync(arguments);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("is not a valid interface name", result.Stderr);
    }

    [Theory]
    [InlineData("--reply-poll-us", "FIREZONE_REPLY_POLL_US", 100_000, "1ms", null)]
    [InlineData("--reply-poll-us", "FIREZONE_REPLY_POLL_US", 100_000, "200000", null)]
    [InlineData("--reply-poll-us", "FIREZONE_REPLY_POLL_US", 100_000, null, "-5")]
    [InlineData("--read-moderation-us", "FIREZONE_READ_MODERATION_US", 10_000, "100us", null)]
    [InlineData("--read-moderation-us", "FIREZONE_READ_MODERATION_US", 10_000, "20000", null)]
    [InlineData("--read-moderation-us", "FIREZONE_READ_MODERATION_US", 10_000, null, "-1")]
    public async Task A_bad_number_of_microseconds_is_refused_before_anything_happens(string flag, string variableName, int most, string? option, string? variable)
    {
        string name = UapiServerFixture.UniqueName();
        string[] arguments = option is null ? ["-f", name] : [flag, option, "-f", name];
        var result = await ProcessRunner.RunAsync(Executable, arguments, timeout: TimeSpan.FromSeconds(30),
            environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "", [variableName] = variable ?? "" });
        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"firezone-tunnel: {flag} / {variableName} '{option ?? variable}' is not a number of microseconds from 0 to {most}\n", result.Stderr);
        Assert.False(File.Exists(UapiSocketPath.For(name)));
    }

    [Fact]
    public async Task No_interface_is_a_usage_error()
    {
        var result = await RunAsync();
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("firezone-tunnel: an INTERFACE name is required (see --help)\n", result.Stderr);
    }

    [Fact]
    public async Task Show_prints_peers_with_ecn_counters_from_a_running_daemon()
    {
        await using var fixture = UapiServerFixture.Start();
        WireGuardKey peer = TestKeys.New();
        await fixture.Control.AddOrUpdatePeerAsync(new PeerConfig { PublicKey = peer }, CancellationToken.None);
        fixture.Control.SetLiveState(peer, p => p with { Ecn = new Control.EcnCounters(5, 4, 3, 2, 1) });
        var result = await RunAsync("show", fixture.Name);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"interface: {fixture.Name}\n", result.Stdout);
        Assert.Contains($"peer: {peer.ToBase64()}\n", result.Stdout);
        Assert.Contains("  ecn: 5 ECT sent, 4 CE received, 3 CE propagated, 2 ECN drops, 1 (!!!) events\n", result.Stdout);
    }

    [Fact]
    public async Task Show_of_an_interface_nobody_serves_fails_with_one_line()
    {
        string name = UapiServerFixture.UniqueName();
        var result = await RunAsync("show", name);
        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"firezone-tunnel: {name}: no such interface (is its daemon running?)\n", result.Stderr);
        Assert.Equal("", result.Stdout);
    }

    [Fact]
    public async Task Show_of_a_socket_left_by_a_dead_daemon_says_no_daemon_serves_it_and_names_the_socket()
    {
        // A daemon killed with SIGKILL leaves its socket file and connecting to it is refused, as
        // to a socket that is bound but not listening (.NET removes the file when it is disposed).
        // The socket is made in a directory of the test's own, which `show` sees as
        // /var/run/wireguard in a mount namespace of its own: in the shared directory any `wg show`
        // of all interfaces (WgInteropTests in parallel, or anyone on the machine) connects to every
        // socket there and deletes the ones that refuse (wireguard-tools'
        // userspace_has_wireguard_interface), and `show` then found no socket at all.
        string name = UapiServerFixture.UniqueName();
        string socket = UapiSocketPath.For(name);
        var directory = Directory.CreateTempSubdirectory("fzt-stale");
        try
        {
            string staleFile = Path.Combine(directory.FullName, name + ".sock");
            using var stale = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            stale.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(staleFile));
            Assert.True(File.Exists(staleFile));
            var result = await ProcessRunner.RunAsync("unshare",
                ["--mount", "--propagation", "private", "sh", "-c", "mkdir -p \"$2\" && mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"",
                    "sh", directory.FullName, UapiSocketPath.DefaultDirectory, Executable, "show", name],
                environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" }, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(1, result.ExitCode);
            // Says that no daemon serves it and why the socket is there: "Connection refused" alone,
            // after a crash, read as a daemon that refused the operator.
            Assert.Equal($"firezone-tunnel: {name}: no daemon serves it: its socket {socket} is left by one that did not stop cleanly (Connection refused)\n", result.Stderr);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>
    /// `show` without an interface, or `show all`, shows every interface as `wg show` does: each of
    /// ours in name order with a blank line between them; a socket left by a dead daemon is passed
    /// over and one another daemon serves (no fz_get) is named on stderr. In a directory of the
    /// test's own, bind-mounted on /var/run/wireguard in a mount namespace (see the test above).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Show_without_an_interface_shows_every_interface_as_wg_show_does(bool all)
    {
        string[] arguments = all ? ["all"] : [];
        var directory = Directory.CreateTempSubdirectory("fzt-all");
        string[] ours = [.. new[] { UapiServerFixture.UniqueName(), UapiServerFixture.UniqueName() }.Order(StringComparer.Ordinal)];
        string stale = UapiServerFixture.UniqueName(), foreign = UapiServerFixture.UniqueName();
        var servers = new List<UapiServer>();
        using var staleSocket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        using var foreignSocket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        try
        {
            var peers = new List<WireGuardKey>();
            foreach (string name in ours)
            {
                var control = new InMemoryTunnelControl();
                var peer = TestKeys.New();
                peers.Add(peer);
                await control.AddOrUpdatePeerAsync(new PeerConfig { PublicKey = peer }, CancellationToken.None);
                servers.Add(UapiServer.Start(UapiSocketPath.For(name, directory.FullName), control, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance));
            }
            staleSocket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(UapiSocketPath.For(stale, directory.FullName)));
            foreignSocket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(UapiSocketPath.For(foreign, directory.FullName)));
            foreignSocket.Listen();
            // As wireguard-go answers an operation it does not know: it reads the request and
            // closes the connection without a reply.
            _ = Task.Run(async () =>
            {
                var buffer = new byte[256];
                while (true)
                {
                    using var connection = await foreignSocket.AcceptAsync();
                    string request = "";
                    while (!request.EndsWith("\n\n", StringComparison.Ordinal) && await connection.ReceiveAsync(buffer) is > 0 and var n)
                    {
                        request += System.Text.Encoding.ASCII.GetString(buffer, 0, n);
                    }
                    connection.Shutdown(System.Net.Sockets.SocketShutdown.Both);
                }
            });
            var result = await ProcessRunner.RunAsync("unshare",
                ["--mount", "--propagation", "private", "sh", "-c", "mkdir -p \"$2\" && mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"",
                    "sh", directory.FullName, UapiSocketPath.DefaultDirectory, Executable, "show", .. arguments],
                timeout: TimeSpan.FromSeconds(30));
            Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Stderr}{result.Stdout}");
            Assert.Equal($"firezone-tunnel: {foreign}: its daemon does not answer fz_get (not firezone-tunnel; wireguard-go?): use wg show {foreign}\n", result.Stderr);
            Assert.StartsWith($"interface: {ours[0]}\n", result.Stdout);
            int second = result.Stdout.IndexOf($"\n\ninterface: {ours[1]}\n", StringComparison.Ordinal);
            Assert.True(second > 0, result.Stdout);
            Assert.Contains($"peer: {peers[0].ToBase64()}\n", result.Stdout[..second]);
            Assert.Contains($"peer: {peers[1].ToBase64()}\n", result.Stdout[second..]);
            Assert.Equal(2, result.Stdout.Split("interface: ").Length - 1);
            Assert.DoesNotContain(stale, result.Stdout + result.Stderr);
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
            foreignSocket.Close();
            directory.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A '%' in a name makes the kernel choose the name (TUNSETIFF with "wg%d" creates wg0), so the
    /// daemon served /var/run/wireguard/wg%d.sock and logged "running interface wg%d" for a device
    /// called wg0, which <c>wg show wg0</c> and <c>ip link del</c> users could not match up.
    /// </summary>
    private const string PercentProblem = "'wg%d' is not a valid interface name: with a '%' in it the kernel picks the name (wg%d gives wg0), which the socket would not be named after; give the name itself";

    /// <summary>
    /// System.CommandLine hands an unknown option to the root command's free INTERFACE argument
    /// (the parse itself succeeds), so the name check is what stops `-f --no-such-opt` from
    /// creating a TUN device called "--no-such-opt". Checked on the parse result: nothing runs.
    /// </summary>
    [Theory]
    [InlineData(new[] { "-f", "--no-such-opt" }, "unknown option '--no-such-opt' (see --help)")]
    [InlineData(new[] { "--bogus" }, "unknown option '--bogus' (see --help)")]
    [InlineData(new[] { "-f", "-x" }, "unknown option '-x' (see --help)")]
    [InlineData(new[] { "-f", "sixteen-chars-xx" }, "'sixteen-chars-xx' is not a valid interface name (1 to 15 characters, no '/' or spaces)")]
    [InlineData(new[] { "a/b" }, "'a/b' is not a valid interface name (1 to 15 characters, no '/' or spaces)")]
    [InlineData(new[] { "-f", "wg:0" }, "'wg:0' is not a valid interface name (1 to 15 characters, no '/' or spaces)")]
    [InlineData(new[] { "-f", "wg%d" }, PercentProblem)]
    [InlineData(new[] { "-f" }, "an INTERFACE name is required (see --help)")]
    public void The_root_INTERFACE_refuses_options_and_names_linux_would_refuse(string[] arguments, string expected)
    {
        var parse = Cli.CommandLine.Build(new UnusedComposition()).Parse(arguments);
        Assert.Empty(parse.Errors);
        string? name = parse.GetValue<string?>("INTERFACE");
        Assert.False(Cli.CommandLine.IsUsableInterfaceName(name, out string? problem));
        Assert.Equal(expected, problem);
    }

    /// <summary>
    /// show and save took an unknown option for their INTERFACE too (System.CommandLine hands it to
    /// the free argument): `show --bogus` said "--bogus: no such interface" with exit code 1, as if
    /// the operator had named a stopped interface. A usage error, as for the root command.
    /// </summary>
    [Theory]
    [InlineData("show", "--bogus")]
    [InlineData("show", "-x")]
    [InlineData("save", "--bogus")]
    public async Task An_unknown_option_of_show_or_save_is_a_usage_error(string command, string option)
    {
        var result = await RunAsync(command, option);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"firezone-tunnel: unknown option '{option}' (see --help)\n", result.Stderr);
        Assert.Equal("", result.Stdout);
    }

    /// <summary>
    /// up's free CONFIG_FILE | INTERFACE argument took an unknown option too: `up --bogus` said
    /// "/etc/wireguard/--bogus.conf: cannot read the file" with exit code 78 (a mistake in the file,
    /// which the unit does not restart on), and `up --config FILE --log-lvl` (a misspelt option with
    /// no value after it) "two configurations, '--log-lvl' and --config FILE". A usage error, as for
    /// the root command, show and save. The file exists, so a regression would start the daemon:
    /// no PrivateKey and no Address, in a namespace of its own.
    /// </summary>
    [Theory]
    [InlineData("up --bogus")]
    [InlineData("up -x")]
    [InlineData("up --config CONFIG --log-lvl")]
    [InlineData("up CONFIG --bogus")]
    [InlineData("up --config CONFIG --ecn-mode")]
    [InlineData("up CONFIG --ecn-mode off")]
    public async Task An_unknown_option_of_up_is_a_usage_error(string commandLine)
    {
        string config = Path.Combine(Path.GetTempPath(), $"fzu{Environment.ProcessId % 100000}.conf");
        await File.WriteAllTextAsync(config, "[Interface]\n");
        try
        {
            await using var ns = await NetworkNamespace.CreateAsync();
            string[] arguments = commandLine.Split(' ');
            string[] argv = ["netns", "exec", ns.Name, Executable, .. arguments.Select(a => a == "CONFIG" ? config : a)];
            var result = await ProcessRunner.RunAsync("ip", argv, environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" }, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(2, result.ExitCode);
            string? option = arguments.LastOrDefault(a => a.StartsWith('-'));
            // --ecn-mode is the root's (wg configures the peers); up is told why it does not take it.
            Assert.Equal(option == "--ecn-mode"
                ? "firezone-tunnel: --ecn-mode and FIREZONE_ECN_MODE are for a daemon that wg configures; up takes the ECN mode from the file: #! EcnMode = normal, compatibility or off under [Interface] (every peer) or under a [Peer]\n"
                : $"firezone-tunnel: unknown option '{option}' (see --help)\n", result.Stderr);
            Assert.Equal("", result.Stdout);
        }
        finally
        {
            File.Delete(config);
        }
    }

    /// <summary>
    /// systemctl reload is wg syncconf of wg-quick strip's output, which reads only wg's keys: a file
    /// whose Address or #! directive an edit broke was reloaded with exit code 0 and no word, and the
    /// next start (a restart on failure, a reboot) failed on it with 78, which the unit does not
    /// restart. The unit's ExecReload now runs up --check first: the start's reading of the file,
    /// its FILE:LINE line and exit code, and nothing created (in a namespace, where a regression
    /// would start a daemon).
    /// </summary>
    [Theory]
    [InlineData("Address = 10.9.0.1/244", 78, ":3: Address: an entry has a bad prefix length (0 to 32)")]
    [InlineData("#! Role = gatewy", 78, ":3: ")]
    [InlineData("Address = 10.9.0.1/24", 0, "")]
    [InlineData("Address = 10.9.0.1/24\nMTU = 1400\nMTU = 1380", 0, ":5: MTU given twice in [Interface] (first on line 4): the later value counts, as in wg-quick and wg")]
    public async Task Up_check_reads_the_file_as_a_start_would_and_creates_nothing(string line, int exitCode, string stderr)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzk" + Guid.NewGuid().ToString("N")[..8];
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        await File.WriteAllTextAsync(config, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n{line.Replace("\\n", "\n", StringComparison.Ordinal)}\n");
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            var result = await ProcessRunner.RunAsync("ip", ["netns", "exec", ns.Name, Executable, "up", "--check", "--config", config],
                environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" }, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(exitCode, result.ExitCode);
            if (stderr.Length == 0)
            {
                Assert.Equal("", result.Stderr);
            }
            else
            {
                Assert.StartsWith($"firezone-tunnel: {config}{stderr}", result.Stderr);
            }
            Assert.Equal("", result.Stdout);
            Assert.False(await ns.HasLinkAsync(name));
            Assert.False(File.Exists(UapiSocketPath.For(name)));
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Theory]
    [InlineData("wg0")]
    [InlineData("fifteen-chars-x")]
    [InlineData("tun.1_a-b")]
    public void The_root_INTERFACE_accepts_linux_interface_names(string name)
    {
        var parse = Cli.CommandLine.Build(new UnusedComposition()).Parse(["-f", name]);
        Assert.Empty(parse.Errors);
        Assert.True(Cli.CommandLine.IsUsableInterfaceName(parse.GetValue<string?>("INTERFACE"), out string? problem));
        Assert.Null(problem);
    }

    /// <summary>
    /// The executable with a bad INTERFACE (with and without -f, so neither a foreground daemon nor
    /// a detached one) or a stray argument: exit code 2, one line, and nothing created. In a
    /// namespace, so a regression would create its TUN device there and not on the host.
    /// </summary>
    [Theory]
    [InlineData(new[] { "-f", "--no-such-opt" }, "firezone-tunnel: unknown option '--no-such-opt' (see --help)")]
    [InlineData(new[] { "--bogus" }, "firezone-tunnel: unknown option '--bogus' (see --help)")]
    [InlineData(new[] { "-f", "sixteen-chars-xx" }, "firezone-tunnel: 'sixteen-chars-xx' is not a valid interface name (1 to 15 characters, no '/' or spaces)")]
    [InlineData(new[] { "-f", "wg%d" }, "firezone-tunnel: " + PercentProblem)]
    [InlineData(new[] { "wg%d" }, "firezone-tunnel: " + PercentProblem)]
    [InlineData(new[] { "NAME", "--bogus" }, "firezone-tunnel: unknown option '--bogus' (see --help)")]
    [InlineData(new[] { "-f", "NAME", "extra" }, "firezone-tunnel: Unrecognized command or argument 'extra' (see --help)")]
    // An unknown option before the name (a typo of --foreground) was taken as the name, and the
    // error then named the interface, which is right: "Unrecognized command or argument 'wg0'".
    [InlineData(new[] { "--forground", "NAME" }, "firezone-tunnel: unknown option '--forground' (see --help)")]
    [InlineData(new[] { "-f", "--log-level", "debug", "-x", "NAME" }, "firezone-tunnel: unknown option '-x' (see --help)")]
    [InlineData(new[] { "up", "--bogus", "NAME" }, "firezone-tunnel: unknown option '--bogus' (see --help)")]
    [InlineData(new[] { "show", "--bogus", "NAME" }, "firezone-tunnel: unknown option '--bogus' (see --help)")]
    public async Task A_bad_interface_argument_is_a_usage_error_and_creates_nothing(string[] arguments, string expected)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string[] withName = [.. arguments.Select(a => a == "NAME" ? name : a)];
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        // The socket of every token that could have become the interface's name, and the log.
        string[] created = [.. withName.Where(a => a != "-f").Select(a => UapiSocketPath.For(a)), log];
        try
        {
            var result = await ns.ExecAsync(Executable, [.. withName, "--log-file", log],
                environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" }, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(2, result.ExitCode);
            Assert.Equal(expected + "\n", result.Stderr);
            Assert.Equal("", result.Stdout);
            string links = (await ns.ExecAsync("ip", ["-o", "link", "show"])).Stdout;
            Assert.Equal(["lo"], links.TrimEnd('\n').Split('\n').Select(l => l.Split(": ")[1]));
            Assert.All(created, f => Assert.False(File.Exists(f), f));
        }
        finally
        {
            foreach (var file in created)
            {
                File.Delete(file);
            }
        }
    }

    /// <summary>
    /// `firezone-tunnel down wg0`, as a wg-quick user stops an interface, said "Unrecognized command
    /// or argument 'wg0'" (and `firezone-tunnel down` started an interface named "down"): now a
    /// usage error that says how to stop it.
    /// </summary>
    [Theory]
    [InlineData(new[] { "down", "wg0" }, "wg0")]
    [InlineData(new[] { "down", "/etc/wireguard/office.conf" }, "office")]
    [InlineData(new[] { "down" }, "wg0")]
    public void Down_is_a_usage_error_that_says_how_to_stop_an_interface(string[] arguments, string name)
    {
        string? problem = Cli.CommandLine.NoDownCommand(arguments);
        Assert.NotNull(problem);
        Assert.StartsWith("firezone-tunnel: there is no down command: ", problem);
        Assert.Contains($"systemctl stop firezone-tunnel@{name}", problem);
        Assert.Contains($"ip link del {name}", problem);
        Assert.Null(Cli.CommandLine.NoDownCommand(["-f", "wg0"]));
        Assert.Null(Cli.CommandLine.NoDownCommand(["up", "down"]));
    }

    /// <summary>Build() needs a composition; these tests never run a daemon with it.</summary>
    private sealed class UnusedComposition : Daemon.ITunnelComposition
    {
        public void Compose(Microsoft.Extensions.DependencyInjection.IServiceCollection services, Daemon.DaemonOptions options) =>
            throw new InvalidOperationException("the test must not start a daemon");
    }

    [Fact]
    public async Task Without_foreground_the_parent_reports_the_daemons_failure_and_exits_non_zero()
    {
        // Another daemon holds the interface's socket, so the detached child cannot start; the
        // parent must relay its one-line reason rather than exit 0. Inside a namespace, in case a
        // TUN device were created.
        await using var ns = await NetworkNamespace.CreateAsync();
        await using var other = UapiServerFixture.Start();
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{other.Name}.log");
        try
        {
            var result = await ns.ExecAsync(Executable, [other.Name, "--log-file", log],
                environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" }, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(1, result.ExitCode);
            Assert.Equal($"firezone-tunnel: {other.SocketPath}: socket in use (is another daemon serving this interface?)\n", result.Stderr);
            Assert.Equal("", result.Stdout);
            Assert.True(File.Exists(other.SocketPath));
            Assert.False(await ns.HasLinkAsync(other.Name));
        }
        finally
        {
            File.Delete(log);
        }
    }
}
