using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Daemon;
using Firezone.Actors.Host.Logging;
using Firezone.Actors.Host.Network;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Service mode's addresses, routes and gateway rules, applied to a persistent TUN interface (no reader) inside a
/// network namespace this test creates and always deletes.
/// </summary>
public sealed class NetworkSetupTests
{
    /// <summary>Runs every command inside the test's namespace.</summary>
    private sealed class NamespaceRunner(string netns) : ICommandRunner
    {
        public Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string? stdin, CancellationToken cancellationToken) =>
            ProcessCommandRunner.Instance.RunAsync("ip", ["netns", "exec", netns, file, .. arguments], stdin, cancellationToken);
    }

    /// <summary>A state directory of the test's own, so no test writes to /run; deleted on dispose.</summary>
    private sealed class TemporaryDirectory : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "fzt-state-" + Guid.NewGuid().ToString("N")[..8]);

        public void Dispose()
        {
            if (Directory.Exists(Path))
            {
                Directory.Delete(Path, recursive: true);
            }
        }
    }

    /// <summary>Records every command and answers "ip rule show" and "sysctl -n" from a tiny model.</summary>
    private sealed class RecordingRunner : ICommandRunner
    {
        public List<string> Commands { get; } = [];

        public Dictionary<string, string> Sysctl { get; } = [];

        /// <summary>What "ip route show default" answers (none by default).</summary>
        public string DefaultRoute { get; init; } = "";

        public Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string? stdin, CancellationToken cancellationToken)
        {
            string command = file + " " + string.Join(' ', arguments);
            Commands.Add(command);
            if (command == "ip route show default")
            {
                return Task.FromResult(DefaultRoute);
            }
            if (file == "sysctl" && arguments[0] == "-n")
            {
                return Task.FromResult(Sysctl.GetValueOrDefault(arguments[1], "0") + "\n");
            }
            if (file == "sysctl" && arguments[0] == "-q")
            {
                foreach (var assignment in arguments.Where(a => a.Contains('=')).Select(a => a.Split('=')))
                {
                    Sysctl[assignment[0]] = assignment[1];
                }
            }
            return Task.FromResult("");
        }
    }

    /// <summary>A gateway's file with a key and nothing else: forwarding and the nftables table, no routes.</summary>
    private static TunnelConfig GatewayWithoutPeers() =>
        new WgQuickConfigParser().Parse("gw.conf", $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n#! Role = gateway\n");

    /// <summary>The set-up of interface fzt0 through <paramref name="runner"/>, its state file in <paramref name="state"/>.</summary>
    private static InterfaceNetworkSetup SetupOf(ICommandRunner runner, TemporaryDirectory state) =>
        new("fzt0", runner, NullLogger.Instance, null, state.Path);

    private static async Task<string> RunOkAsync(string file, params string[] arguments)
    {
        var result = await ProcessRunner.RunAsync(file, arguments, timeout: TimeSpan.FromSeconds(15));
        Assert.True(result.ExitCode == 0, $"{file} {string.Join(' ', arguments)}: {result.Stderr}");
        return result.Stdout;
    }

    [Fact]
    public async Task Addresses_routes_and_gateway_masquerade_are_applied_and_torn_down()
    {
        string suffix = Guid.NewGuid().ToString("N")[..8];
        string netns = "fzt-ns-" + suffix;
        string name = "fzd" + suffix;
        var config = new WgQuickConfigParser().Parse("gw.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.77.0.1/24, fd77::1/64
            #! Role = gateway

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 10.77.0.2/32, 10.77.0.0/24, 10.88.0.0/16, fd88::/64, 0.0.0.0/0
            """);
        await RunOkAsync("ip", "netns", "add", netns);
        try
        {
            await RunOkAsync("ip", "-n", netns, "tuntap", "add", "dev", name, "mode", "tun");
            using var state = new TemporaryDirectory();
            var setup = new InterfaceNetworkSetup(name, new NamespaceRunner(netns), NullLogger.Instance, new InMemoryTunnelControl(), state.Path);
            await setup.ApplyAsync(config, CancellationToken.None);

            string addresses = await RunOkAsync("ip", "-n", netns, "address", "show", "dev", name);
            Assert.Contains("inet 10.77.0.1/24", addresses);
            Assert.Contains("inet6 fd77::1/64", addresses);
            Assert.Contains(",UP>", await RunOkAsync("ip", "-n", netns, "link", "show", "dev", name)); // administratively up
            string routes4 = await RunOkAsync("ip", "-n", netns, "-4", "route", "show", "dev", name);
            // As wg-quick: the Address's connected route covers 10.77.0.2/32 and 10.77.0.0/24, so
            // neither is added and the kernel's route (with its source address) stays.
            Assert.Contains("10.77.0.0/24 proto kernel scope link src 10.77.0.1", routes4);
            Assert.DoesNotContain("10.77.0.2 ", routes4);
            Assert.Equal(1, CountLines(routes4, "10.77.0.0/24"));
            Assert.Contains("10.88.0.0/16 ", routes4);
            Assert.DoesNotContain("default", routes4); // a /0 goes to its own table (see the default-route test)
            Assert.Contains("fd88::/64 ", await RunOkAsync("ip", "-n", netns, "-6", "route", "show", "dev", name));

            string table = await RunOkAsync("ip", "netns", "exec", netns, "nft", "list", "table", "inet", setup.TableName);
            Assert.Contains($"iifname \"{name}\" oifname != \"{name}\" masquerade", table);
            Assert.Equal("1", (await RunOkAsync("ip", "netns", "exec", netns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
            Assert.Equal("1", (await RunOkAsync("ip", "netns", "exec", netns, "sysctl", "-n", "net.ipv6.conf.all.forwarding")).Trim());

            await setup.TearDownAsync(CancellationToken.None);
            Assert.DoesNotContain(setup.TableName, await RunOkAsync("ip", "netns", "exec", netns, "nft", "list", "tables"));
            Assert.Equal("0", (await RunOkAsync("ip", "netns", "exec", netns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
            Assert.Equal("0", (await RunOkAsync("ip", "netns", "exec", netns, "sysctl", "-n", "net.ipv6.conf.all.forwarding")).Trim());
        }
        finally
        {
            await ProcessRunner.RunAsync("ip", ["netns", "delete", netns], timeout: TimeSpan.FromSeconds(15));
        }
    }

    [Theory]
    [InlineData(null)]
    [InlineData(4321u)]
    public async Task A_default_route_uses_a_marked_socket_and_policy_rules_removed_on_teardown(uint? fwMark)
    {
        string suffix = Guid.NewGuid().ToString("N")[..8];
        string netns = "fzt-ns-" + suffix;
        string name = "fzr" + suffix;
        string mark = fwMark is uint m ? $"FwMark = {m}\n" : "";
        var config = new WgQuickConfigParser().Parse("full.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.79.0.1/24, fd79::1/64
            {mark}
            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 0.0.0.0/0, ::/0
            """);
        await RunOkAsync("ip", "netns", "add", netns);
        try
        {
            await RunOkAsync("ip", "-n", netns, "tuntap", "add", "dev", name, "mode", "tun");
            // A table already in use is skipped, as wg-quick does.
            await RunOkAsync("ip", "-n", netns, "link", "set", "lo", "up");
            await RunOkAsync("ip", "-n", netns, "route", "add", "192.0.2.0/24", "dev", "lo", "table", "51820");
            var control = new InMemoryTunnelControl();
            using var state = new TemporaryDirectory();
            var setup = new InterfaceNetworkSetup(name, new NamespaceRunner(netns), NullLogger.Instance, control, state.Path);
            await setup.ApplyAsync(config, CancellationToken.None);

            uint expected = fwMark ?? 51821;
            string table = expected.ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(expected, setup.DefaultRouteTable);
            // The socket's mark is the table (wg-quick: "wg set IF fwmark T"), unless FwMark gave one.
            Assert.Equal(fwMark is null ? [$"SetFwmark {table}"] : [], control.Calls.Where(c => c.StartsWith("SetFwmark", StringComparison.Ordinal)).ToArray());
            Assert.Contains($"default dev {name}", await RunOkAsync("ip", "-n", netns, "-4", "route", "show", "table", table));
            Assert.Contains($"default dev {name}", await RunOkAsync("ip", "-n", netns, "-6", "route", "show", "table", table));
            string hex = "0x" + expected.ToString("x", System.Globalization.CultureInfo.InvariantCulture);
            foreach (var family in new[] { "-4", "-6" })
            {
                string rules = await RunOkAsync("ip", "-n", netns, family, "rule", "show");
                Assert.Contains($"not from all fwmark {hex} lookup {table}", rules);
                Assert.Contains("from all lookup main suppress_prefixlength 0", rules);
            }
            // The main table keeps no default through the tunnel: only unmarked packets use table T.
            Assert.DoesNotContain("default", await RunOkAsync("ip", "-n", netns, "-4", "route", "show", "dev", name));
            Assert.Equal("1", (await RunOkAsync("ip", "netns", "exec", netns, "sysctl", "-n", "net.ipv4.conf.all.src_valid_mark")).Trim());
            // An unmarked packet goes through the tunnel, a marked one (the tunnel's own datagram) does not.
            Assert.Contains($"dev {name}", await RunOkAsync("ip", "-n", netns, "-4", "route", "get", "198.51.100.1"));
            Assert.DoesNotContain($"dev {name}", (await ProcessRunner.RunAsync("ip", ["-n", netns, "-4", "route", "get", "198.51.100.1", "mark", table], timeout: TimeSpan.FromSeconds(15))).Stdout);

            await setup.TearDownAsync(CancellationToken.None);
            Assert.Null(setup.DefaultRouteTable);
            Assert.Equal("", (await RunOkAsync("ip", "-n", netns, "-4", "route", "show", "table", table)).Trim());
            Assert.Equal("", (await RunOkAsync("ip", "-n", netns, "-6", "route", "show", "table", table)).Trim());
            foreach (var family in new[] { "-4", "-6" })
            {
                string rules = await RunOkAsync("ip", "-n", netns, family, "rule", "show");
                Assert.DoesNotContain("fwmark", rules);
                Assert.DoesNotContain("suppress_prefixlength", rules);
            }
            Assert.Equal("0", (await RunOkAsync("ip", "netns", "exec", netns, "sysctl", "-n", "net.ipv4.conf.all.src_valid_mark")).Trim());
        }
        finally
        {
            await ProcessRunner.RunAsync("ip", ["netns", "delete", netns], timeout: TimeSpan.FromSeconds(15));
        }
    }

    [Fact]
    public async Task A_failing_command_is_reported_with_its_error()
    {
        var setup = new InterfaceNetworkSetup("fzt-missing0", ProcessCommandRunner.Instance, NullLogger.Instance);
        var config = new WgQuickConfigParser().Parse("c.conf", $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.99.0.1/24\n");
        var error = await Assert.ThrowsAsync<StartupException>(() => setup.ApplyAsync(config, CancellationToken.None));
        Assert.StartsWith("c.conf:3: Address: ip -4 address add 10.99.0.1/24 dev fzt-missing0: ", error.Message);
    }

    /// <summary>
    /// Found in the walk-through: a file with DNS on a host without resolvconf failed with .NET's
    /// "An error occurred trying to start process 'resolvconf' with working directory '/tmp/x'. No
    /// such file or directory" in the middle of the line.
    /// </summary>
    [Theory]
    [InlineData("fzt-no-such-command", "cannot run fzt-no-such-command: no such command on PATH")]
    [InlineData("/nonexistent/fzt-tool", "cannot run /nonexistent/fzt-tool: No such file or directory")]
    [InlineData("", "cannot run {0}: Permission denied")]
    public async Task A_command_that_cannot_be_started_is_named_with_the_reason_alone(string file, string expected)
    {
        string? notExecutable = null;
        if (file.Length == 0)
        {
            notExecutable = file = Path.GetTempFileName();
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        try
        {
            var error = await Assert.ThrowsAsync<StartupException>(() => ProcessCommandRunner.Instance.RunAsync(file, [], null, CancellationToken.None));
            Assert.Equal(string.Format(expected, file), error.Message);
        }
        finally
        {
            if (notExecutable is not null)
            {
                File.Delete(notExecutable);
            }
        }
    }

    /// <summary>
    /// A tool run without input (resolvconf -d, ip) gets an empty stdin of its own, not the daemon's,
    /// as hooks do (WgQuickHookRunner). Found running the Host tests with a terminal as stdin
    /// (script -qec 'dotnet test ...'): the daemon's tools inherited the terminal, the stand-in
    /// resolvconf's `cat` waited on it, and each stop's `resolvconf -d` took the whole 10 s bound
    /// (DnsResolvconfTests.A_record_that_cannot_be_removed_on_stop_is_removed_by_the_next_start
    /// failed). A daemon in the foreground at a terminal, or started with a pipe that stays open,
    /// would lend them its stdin the same way. The check compares the tool's stdin with the test
    /// process's own, so it holds whatever the test runner's stdin is.
    /// </summary>
    [Fact]
    public async Task A_tool_run_without_input_gets_an_empty_stdin_not_the_daemons()
    {
        string ours = File.Exists("/proc/self/fd/0") ? new FileInfo("/proc/self/fd/0").LinkTarget ?? "" : "(closed)";
        string theirs = await ProcessCommandRunner.Instance.RunAsync("sh", ["-c", "readlink /proc/self/fd/0 || echo '(closed)'; cat"], null, CancellationToken.None);
        string[] lines = theirs.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.NotEqual(ours, lines[0]);
        Assert.StartsWith("pipe:", lines[0]);
    }

    /// <summary>STYLE rule 11: the address ip refuses is named by its line, as every other mistake in the file.</summary>
    [Fact]
    public async Task An_address_ip_refuses_names_its_line()
    {
        using var state = new TemporaryDirectory();
        var config = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf",
            $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nMTU = 1420\nAddress = 10.9.0.1/24\nAddress = fd00::1/64, 10.9.1.1/24\n");
        var error = await Assert.ThrowsAsync<StartupException>(() => SetupOf(new Ipv6OffRunner(), state).ApplyAsync(config, CancellationToken.None));
        Assert.Equal("/etc/wireguard/wg0.conf:5: Address: ip -6 address add fd00::1/64 dev fzt0: Error: ipv6: IPv6 is disabled on this device.", error.Message);
    }

    /// <summary>STYLE rule 11: an allowed IP whose route ip refuses is named by its line, in the [Peer] it ended up with.</summary>
    [Fact]
    public async Task An_allowed_ip_whose_route_ip_refuses_names_its_line()
    {
        using var state = new TemporaryDirectory();
        var config = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf",
            $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nMTU = 1420\nTable = 1234\n\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.9.0.0/24\nAllowedIPs = fd00::/64\n");
        var error = await Assert.ThrowsAsync<StartupException>(() => SetupOf(new Ipv6RouteOffRunner(), state).ApplyAsync(config, CancellationToken.None));
        Assert.Equal("/etc/wireguard/wg0.conf:9: AllowedIPs fd00::/64: ip -6 route add fd00::/64 dev fzt0 table 1234: Error: IPv6 is disabled on this device.", error.Message);
    }

    /// <summary>As ip answers an IPv6 route where IPv6 is off.</summary>
    private sealed class Ipv6RouteOffRunner : ICommandRunner
    {
        public Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string? stdin, CancellationToken cancellationToken)
        {
            string command = file + " " + string.Join(' ', arguments);
            return command.StartsWith("ip -6 route add ", StringComparison.Ordinal)
                ? throw new StartupException(command + ": Error: IPv6 is disabled on this device.")
                : Task.FromResult(file == "sysctl" ? "0\n" : "");
        }
    }

    /// <summary>As ip answers where IPv6 is off (net.ipv6.conf.all.disable_ipv6 = 1).</summary>
    private sealed class Ipv6OffRunner : ICommandRunner
    {
        public Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string? stdin, CancellationToken cancellationToken)
        {
            string command = file + " " + string.Join(' ', arguments);
            return command.StartsWith("ip -6 address add ", StringComparison.Ordinal)
                ? throw new StartupException(command + ": Error: ipv6: IPv6 is disabled on this device.")
                : Task.FromResult(file == "sysctl" ? "0\n" : "");
        }
    }

    private static string Namespaced(NetworkNamespace ns) => ns.Name;

    private static async Task<string> InsideAsync(NetworkNamespace ns, params string[] arguments)
    {
        var result = await ns.ExecAsync(arguments[0], arguments[1..], timeout: TimeSpan.FromSeconds(15));
        Assert.True(result.ExitCode == 0, $"{string.Join(' ', arguments)}: {result.Stderr}");
        return result.Stdout;
    }

    /// <summary>Two TUN devices in <paramref name="ns"/> and a set-up for each, sharing the state directory.</summary>
    private static async Task<(InterfaceNetworkSetup One, InterfaceNetworkSetup Two)> TwoSetupsAsync(NetworkNamespace ns, TemporaryDirectory state)
    {
        string suffix = Guid.NewGuid().ToString("N")[..8];
        string first = "fza" + suffix, second = "fzb" + suffix;
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", first, "mode", "tun");
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", second, "mode", "tun");
        var runner = new NamespaceRunner(Namespaced(ns));
        return (new InterfaceNetworkSetup(first, runner, NullLogger.Instance, new InMemoryTunnelControl(), state.Path),
            new InterfaceNetworkSetup(second, runner, NullLogger.Instance, new InMemoryTunnelControl(), state.Path));
    }

    private static int CountLines(string text, string part) =>
        text.Split('\n').Count(line => line.Contains(part, StringComparison.Ordinal));

    [Fact]
    public async Task Table_off_adds_no_routes_and_no_policy_rules()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzo" + Guid.NewGuid().ToString("N")[..8];
        var config = new WgQuickConfigParser().Parse("off.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.81.0.1/24, fd81::1/64
            Table = off

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 10.88.0.0/16, fd88::/64, 0.0.0.0/0, ::/0
            """);
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", name, "mode", "tun");
        using var state = new TemporaryDirectory();
        var control = new InMemoryTunnelControl();
        var setup = new InterfaceNetworkSetup(name, new NamespaceRunner(Namespaced(ns)), NullLogger.Instance, control, state.Path);
        await setup.ApplyAsync(config, CancellationToken.None);

        Assert.Contains("inet 10.81.0.1/24", await InsideAsync(ns, "ip", "address", "show", "dev", name)); // addresses still go on
        string routes4 = await InsideAsync(ns, "ip", "-4", "route", "show", "table", "all");
        string routes6 = await InsideAsync(ns, "ip", "-6", "route", "show", "table", "all");
        Assert.DoesNotContain("10.88.0.0/16", routes4);
        Assert.DoesNotContain("default", routes4);
        Assert.DoesNotContain("fd88::/64", routes6);
        Assert.DoesNotContain("default", routes6);
        foreach (var family in new[] { "-4", "-6" })
        {
            string rules = await InsideAsync(ns, "ip", family, "rule", "show");
            Assert.DoesNotContain("fwmark", rules);
            Assert.DoesNotContain("suppress_prefixlength", rules);
        }
        Assert.Null(setup.DefaultRouteTable);
        Assert.DoesNotContain(control.Calls, c => c.StartsWith("SetFwmark", StringComparison.Ordinal));
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.conf.all.src_valid_mark")).Trim());
        Assert.False(File.Exists(setup.StateFile.Path)); // nothing outlives the process, nothing to record

        await setup.TearDownAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Table_off_runs_no_route_or_rule_command()
    {
        using var state = new TemporaryDirectory();
        var runner = new RecordingRunner();
        var config = new WgQuickConfigParser().Parse("off.conf", $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.81.0.1/24\nTable = off\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.88.0.0/16, 0.0.0.0/0\n");
        var setup = new InterfaceNetworkSetup("fzt0", runner, NullLogger.Instance, new InMemoryTunnelControl(), state.Path);
        await setup.ApplyAsync(config, CancellationToken.None);
        await setup.TearDownAsync(CancellationToken.None);
        // No MTU key and no endpoint: wg-quick's MTU from the default route (none here: 1500 - 80).
        Assert.Equal(["ip -4 address add 10.81.0.1/24 dev fzt0", "ip route show default", "ip link set dev fzt0 mtu 1420", "ip link set dev fzt0 up"], runner.Commands);
    }

    /// <summary>
    /// wg-quick's rule (the path's MTU less 80) gives less than 1280, the IPv6 minimum, on a path
    /// below 1360 bytes: with an IPv6 allowed IP whose route is added the start stops there, naming
    /// its line (ip would refuse the route with "No such device"); with Table = off no route is added
    /// and the tunnel starts, as wg-quick's would.
    /// </summary>
    [Theory]
    [InlineData(1359, "auto", 1279, true)]
    [InlineData(1360, "auto", 1280, false)]
    [InlineData(1359, "off", 1279, false)]
    public async Task An_IPv6_allowed_IP_stops_an_automatic_MTU_below_1280_unless_no_route_is_added(int pathMtu, string table, int mtu, bool refused)
    {
        using var state = new TemporaryDirectory();
        var runner = new RecordingRunner { DefaultRoute = $"default via 192.0.2.1 dev eth0 mtu {pathMtu}\n" };
        var config = new WgQuickConfigParser().Parse("v6.conf", $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.81.0.1/24\nTable = {table}\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.88.0.0/16\nAllowedIPs = fd88::/64\n");
        var logger = new ListLogger();
        var setup = new InterfaceNetworkSetup("fzt0", runner, logger, new InMemoryTunnelControl(), state.Path);
        if (refused)
        {
            var e = await Assert.ThrowsAsync<StartupException>(() => setup.ApplyAsync(config, CancellationToken.None));
            Assert.StartsWith($"v6.conf:8: AllowedIPs fd88::/64 is IPv6, and the MTU wg-quick's rule gives fzt0 here, {mtu} ({pathMtu} on the way", e.Message);
            Assert.Contains("set MTU = 1280 in [Interface]", e.Message);
            Assert.DoesNotContain(runner.Commands, c => c.StartsWith("ip link set dev fzt0 mtu", StringComparison.Ordinal));
        }
        else
        {
            await setup.ApplyAsync(config, CancellationToken.None);
            Assert.Contains($"ip link set dev fzt0 mtu {mtu}", runner.Commands);
            // Table = off: started, but IPv6 through the tunnel cannot work, and the log says so.
            var warnings = logger.At(LogLevel.Warning).Where(w => w.Contains("IPv6 minimum", StringComparison.Ordinal)).ToList();
            if (mtu < 1280)
            {
                Assert.StartsWith($"v6.conf:8: AllowedIPs fd88::/64 is IPv6, and the MTU wg-quick's rule gives fzt0 here, {mtu}, is below 1280", Assert.Single(warnings));
            }
            else
            {
                Assert.Empty(warnings);
            }
        }
        await setup.TearDownAsync(CancellationToken.None);
    }

    [Theory]
    [InlineData("1234")]
    [InlineData("main")]
    public async Task A_named_table_gets_every_route_without_policy_rules_and_loses_them_on_teardown(string table)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzn" + Guid.NewGuid().ToString("N")[..8];
        var config = new WgQuickConfigParser().Parse("table.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.82.0.1/24, fd82::1/64
            Table = {table}

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 10.88.0.0/16, fd88::/64, 0.0.0.0/0, ::/0
            """);
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", name, "mode", "tun");
        using var state = new TemporaryDirectory();
        var control = new InMemoryTunnelControl();
        var setup = new InterfaceNetworkSetup(name, new NamespaceRunner(Namespaced(ns)), NullLogger.Instance, control, state.Path);
        await setup.ApplyAsync(config, CancellationToken.None);

        string routes4 = await InsideAsync(ns, "ip", "-4", "route", "show", "table", table, "dev", name);
        string routes6 = await InsideAsync(ns, "ip", "-6", "route", "show", "table", table, "dev", name);
        Assert.Contains("10.88.0.0/16", routes4);
        Assert.Contains("default", routes4); // a /0 is an ordinary route in that table
        Assert.Contains("fd88::/64", routes6);
        Assert.Contains("default", routes6);
        if (table != "main")
        {
            Assert.DoesNotContain("10.88.0.0/16", await InsideAsync(ns, "ip", "-4", "route", "show", "table", "main"));
        }
        foreach (var family in new[] { "-4", "-6" })
        {
            string rules = await InsideAsync(ns, "ip", family, "rule", "show");
            Assert.DoesNotContain("fwmark", rules);
            Assert.DoesNotContain("suppress_prefixlength", rules);
        }
        Assert.Null(setup.DefaultRouteTable);
        Assert.DoesNotContain(control.Calls, c => c.StartsWith("SetFwmark", StringComparison.Ordinal));
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.conf.all.src_valid_mark")).Trim());
        // An unmarked packet follows the table's default when the table is consulted (main always is).
        if (table == "main")
        {
            Assert.Contains($"dev {name}", await InsideAsync(ns, "ip", "-4", "route", "get", "198.51.100.1"));
        }

        await setup.TearDownAsync(CancellationToken.None);
        // The device is still there (a persistent TUN), so these are gone because teardown removed them.
        Assert.True(await ns.HasLinkAsync(name));
        Assert.DoesNotContain("10.88.0.0/16", await InsideAsync(ns, "ip", "-4", "route", "show", "table", table, "dev", name));
        Assert.DoesNotContain("default", await InsideAsync(ns, "ip", "-4", "route", "show", "table", table, "dev", name));
        Assert.DoesNotContain("fd88::/64", await InsideAsync(ns, "ip", "-6", "route", "show", "table", table, "dev", name));
        Assert.DoesNotContain("default", await InsideAsync(ns, "ip", "-6", "route", "show", "table", table, "dev", name));
        Assert.False(File.Exists(setup.StateFile.Path));
    }

    /// <summary>
    /// wg-quick adds the routes most specific first (<c>sort -nr -k 2 -t /</c>): a wider prefix
    /// added first would "cover" a narrower one (add_route's <c>ip route show dev IF match</c>), so a
    /// route for the narrower prefix through another device would stay there, and which peer's
    /// traffic leaves by that device would depend on the order of the peers in the file.
    /// </summary>
    [Fact]
    public async Task A_narrower_allowed_ip_after_a_wider_one_still_moves_to_the_tunnel()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string suffix = Guid.NewGuid().ToString("N")[..8];
        string name = "fzw" + suffix;
        string other = "fzx" + suffix;
        var config = new WgQuickConfigParser().Parse("order.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.83.0.1/24

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 10.88.0.0/16

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 10.88.5.0/24
            """);
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", name, "mode", "tun");
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", other, "mode", "tun");
        await InsideAsync(ns, "ip", "link", "set", other, "up");
        await InsideAsync(ns, "ip", "route", "add", "10.88.5.0/24", "dev", other);
        using var state = new TemporaryDirectory();
        var setup = new InterfaceNetworkSetup(name, new NamespaceRunner(Namespaced(ns)), NullLogger.Instance, new InMemoryTunnelControl(), state.Path);
        await setup.ApplyAsync(config, CancellationToken.None);

        string routes = await InsideAsync(ns, "ip", "-4", "route", "show", "dev", name);
        Assert.Contains("10.88.0.0/16 ", routes);
        Assert.Contains("10.88.5.0/24 ", routes);
        Assert.Contains($"dev {name}", await InsideAsync(ns, "ip", "-4", "route", "get", "10.88.5.9"));

        await setup.TearDownAsync(CancellationToken.None);
    }

    /// <summary>
    /// The routes for the allowed IPs go to ip as one batch (a Gateway with 1,000 peers started an
    /// ip process for each); many routes still all arrive, and a route ip refuses still names the
    /// allowed IP with its file and line, not only "Command failed -:2" of the batch.
    /// </summary>
    [Fact]
    public async Task Many_allowed_ips_get_their_routes_and_a_refused_one_is_named_with_its_line()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzb" + Guid.NewGuid().ToString("N")[..8];
        var peers = new System.Text.StringBuilder();
        for (int i = 0; i < 300; i++)
        {
            peers.Append($"\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.{90 + i / 256}.{i % 256}.1/32, fd90::{i:x}/128\n");
        }
        var config = new WgQuickConfigParser().Parse("/etc/wireguard/many.conf", $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.89.0.1/24\n{peers}");
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", name, "mode", "tun");
        using (var state = new TemporaryDirectory())
        {
            var setup = new InterfaceNetworkSetup(name, new NamespaceRunner(Namespaced(ns)), NullLogger.Instance, new InMemoryTunnelControl(), state.Path);
            await setup.ApplyAsync(config, CancellationToken.None);
            string routes4 = await InsideAsync(ns, "ip", "-4", "route", "show", "dev", name);
            string routes6 = await InsideAsync(ns, "ip", "-6", "route", "show", "dev", name);
            Assert.Equal(300, routes4.Split('\n').Count(l => l.StartsWith("10.9", StringComparison.Ordinal)));
            Assert.Equal(300, routes6.Split('\n').Count(l => l.StartsWith("fd90::", StringComparison.Ordinal)));
            await setup.TearDownAsync(CancellationToken.None);
        }

        // IPv6 off on the next device: ip refuses its IPv6 routes ("IPv6 is disabled on nexthop device").
        string off = "fzo" + Guid.NewGuid().ToString("N")[..8];
        await InsideAsync(ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1");
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", off, "mode", "tun");
        var refused = new WgQuickConfigParser().Parse("/etc/wireguard/off.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 10.91.0.0/24, 10.92.0.0/24

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = fd91::/64
            """);
        using (var state = new TemporaryDirectory())
        {
            var setup = new InterfaceNetworkSetup(off, new NamespaceRunner(Namespaced(ns)), NullLogger.Instance, new InMemoryTunnelControl(), state.Path);
            var error = await Assert.ThrowsAsync<StartupException>(() => setup.ApplyAsync(refused, CancellationToken.None));
            Assert.StartsWith("/etc/wireguard/off.conf:10: AllowedIPs fd91::/64: ", error.Message);
            Assert.Contains("IPv6 is disabled on nexthop device", error.Message);
            await setup.TearDownAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// wg-quick takes interface names of [a-zA-Z0-9_=+.-]; nft's table names take no '=' or '+'
    /// (nor quotes), so the table is named with such characters spelled out.
    /// </summary>
    [Fact]
    public async Task A_gateway_whose_interface_name_has_characters_nft_names_refuse_gets_its_table()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fz+g=" + Guid.NewGuid().ToString("N")[..8];
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", name, "mode", "tun");
        using var state = new TemporaryDirectory();
        var setup = new InterfaceNetworkSetup(name, new NamespaceRunner(Namespaced(ns)), NullLogger.Instance, new InMemoryTunnelControl(), state.Path);
        await setup.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);

        Assert.Equal("firezone-tunnel-fz_2bg_3d" + name[5..], setup.TableName);
        string table = await InsideAsync(ns, "nft", "list", "table", "inet", setup.TableName);
        Assert.Contains($"iifname \"{name}\" oifname != \"{name}\" masquerade", table);

        await setup.TearDownAsync(CancellationToken.None);
        Assert.DoesNotContain(setup.TableName, await InsideAsync(ns, "nft", "list", "tables"));
    }

    /// <summary>
    /// A firewall reload that flushes the ruleset (Debian's /etc/nftables.conf starts with
    /// <c>flush ruleset</c>) takes the gateway's table with it; the stop then warned "Could not
    /// remove nftables table ...: Error: Could not process rule: No such file or directory", as if
    /// the stop had failed, and said nothing of the masquerade missing since the flush. Found by
    /// hand (an operator's review): the resources behind the gateway unreachable, no line until the
    /// stop. Now the stop's line says what happened; forwarding is restored all the same.
    /// </summary>
    [Fact]
    public async Task A_gateway_whose_table_a_ruleset_flush_removed_says_so_at_the_stop()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzf" + Guid.NewGuid().ToString("N")[..8];
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", name, "mode", "tun");
        using var state = new TemporaryDirectory();
        var logger = new ListLogger();
        var setup = new InterfaceNetworkSetup(name, new NamespaceRunner(Namespaced(ns)), logger, new InMemoryTunnelControl(), state.Path);
        await setup.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);
        await InsideAsync(ns, "nft", "flush", "ruleset");

        await setup.TearDownAsync(CancellationToken.None);
        string warnings = string.Join("\n", logger.At(LogLevel.Warning));
        Assert.Contains($"nftables table inet {setup.TableName} was already gone at the stop: another program removed it", warnings);
        Assert.DoesNotContain("Could not remove nftables table", warnings);
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
    }

    /// <summary>
    /// Two gateways in one network namespace (wg0 and wg1 on one host): the first turned forwarding
    /// on, the second found it on. Stopping the first (<c>systemctl restart</c> of one of them)
    /// restored forwarding to 0 under the second, which went on running with its masquerade table
    /// but forwarded nothing. Found by hand: two <c>firezone-tunnel up</c> gateways, one stopped.
    /// </summary>
    [Fact]
    public async Task Stopping_one_gateway_leaves_forwarding_on_for_another_still_running()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        using var state = new TemporaryDirectory();
        var (one, two) = await TwoSetupsAsync(ns, state);
        await one.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);
        await two.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);

        await one.TearDownAsync(CancellationToken.None);
        string tables = await InsideAsync(ns, "nft", "list", "tables");
        Assert.DoesNotContain(one.TableName, tables);
        Assert.Contains(two.TableName, tables);
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", "net.ipv6.conf.all.forwarding")).Trim());

        await two.TearDownAsync(CancellationToken.None);
        Assert.DoesNotContain(two.TableName, await InsideAsync(ns, "nft", "list", "tables"));
        // The last to stop restores what the first found (the second found them on, set by the first).
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv6.conf.all.forwarding")).Trim());
    }

    /// <summary>
    /// Another program that routes through this namespace and started after the gateway (Docker,
    /// libvirt, LXD: each masquerades its containers' or guests' traffic with its own nftables
    /// table, or iptables-nft's <c>ip nat</c>) finds forwarding on and never sets it itself. The
    /// gateway's stop set it back to 0 under that program, whose containers lost their way out
    /// (closing notes 29 to 31). A masquerade or source NAT of a table not ours now keeps forwarding
    /// on, as another gateway's table does; a destination NAT (port forwarding into a container)
    /// counts as well, a table without NAT does not.
    /// </summary>
    [Theory]
    [InlineData("masquerade", true)]
    [InlineData("snat to 192.0.2.1", true)]
    [InlineData("dnat to 172.30.0.2", true)]
    [InlineData("counter accept", false)]
    public async Task Forwarding_stays_on_for_another_program_whose_nftables_table_translates_addresses(string statement, bool staysOn)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        using var state = new TemporaryDirectory();
        string name = "fzd" + Guid.NewGuid().ToString("N")[..8];
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", name, "mode", "tun");
        var setup = new InterfaceNetworkSetup(name, new NamespaceRunner(Namespaced(ns)), NullLogger.Instance, new InMemoryTunnelControl(), state.Path);
        await setup.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());

        // What `docker run` adds once the gateway runs (Docker's nftables firewall backend names its
        // table docker-bridges).
        string hook = statement.StartsWith("dnat", StringComparison.Ordinal) ? "prerouting priority -100" : "postrouting priority 100";
        await InsideAsync(ns, "nft", "add", "table", "ip", "docker-bridges");
        await InsideAsync(ns, "nft", "add", "chain", "ip", "docker-bridges", "nat", $"{{ type nat hook {hook}; }}");
        await InsideAsync(ns, ["nft", "add", "rule", "ip", "docker-bridges", "nat", "ip", "saddr", "172.30.0.0/16", .. statement.Split(' ')]);

        await setup.TearDownAsync(CancellationToken.None);
        Assert.DoesNotContain(setup.TableName, await InsideAsync(ns, "nft", "list", "tables"));
        string expected = staysOn ? "1" : "0";
        Assert.Equal(expected, (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
        Assert.Equal(expected, (await InsideAsync(ns, "sysctl", "-n", "net.ipv6.conf.all.forwarding")).Trim());
        // Nothing is left for a later stop to restore either.
        Assert.False(File.Exists(setup.StateFile.Path));
    }

    /// <summary>
    /// Switching forwarding makes the kernel change other switches, which a gateway's stop left
    /// changed: IPv4 forwarding sets <c>all.accept_redirects</c> (0 when on, 1 when off, so an
    /// operator's hardening 0 came back as 1), and a host with IPv6 forwarding on ignores router
    /// advertisements on interfaces with <c>accept_ra = 1</c> and drops the default routes they
    /// gave (a cloud host lost IPv6 while the gateway ran). Found in an operator's review (a router
    /// advertisement sent from another namespace: the route went at the gateway's start and came
    /// back only after its stop). Now those interfaces get <c>accept_ra = 2</c> while forwarding
    /// is on, and both come back to what they were, also when two gateways stop in turn.
    /// </summary>
    [Fact]
    public async Task Forwarding_leaves_router_advertisements_accepted_and_accept_redirects_as_the_operator_set_them()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        using var state = new TemporaryDirectory();
        string uplink = "fzu" + Guid.NewGuid().ToString("N")[..8];
        await InsideAsync(ns, "ip", "link", "add", uplink, "type", "veth", "peer", "name", uplink + "p");
        string gone = "fzg" + uplink[3..]; // deleted while the gateways run: nothing to restore, no Warning, no state left
        await InsideAsync(ns, "ip", "link", "add", gone, "type", "veth", "peer", "name", gone + "p");
        await InsideAsync(ns, "sysctl", "-q", "-w", "net.ipv4.conf.all.accept_redirects=0");
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv6.conf.{uplink}.accept_ra")).Trim());
        var (one, two) = await TwoSetupsAsync(ns, state);

        await one.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);
        await two.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", "net.ipv6.conf.all.forwarding")).Trim());
        Assert.Equal("2", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv6.conf.{uplink}.accept_ra")).Trim());

        await one.TearDownAsync(CancellationToken.None);
        Assert.Equal("2", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv6.conf.{uplink}.accept_ra")).Trim()); // forwarding stays on for two

        Assert.Equal("2", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv6.conf.{gone}.accept_ra")).Trim());
        await InsideAsync(ns, "ip", "link", "delete", gone);
        await two.TearDownAsync(CancellationToken.None);
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.conf.all.accept_redirects")).Trim());
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv6.conf.{uplink}.accept_ra")).Trim());
        Assert.False(File.Exists(two.StateFile.Path));
    }

    /// <summary>Counts the commands it runs inside the namespace, by program.</summary>
    private sealed class CountingRunner(string netns) : ICommandRunner
    {
        private readonly NamespaceRunner _inner = new(netns);

        public Dictionary<string, int> Runs { get; } = [];

        public Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string? stdin, CancellationToken cancellationToken)
        {
            Runs[file] = Runs.GetValueOrDefault(file) + 1;
            return _inner.RunAsync(file, arguments, stdin, cancellationToken);
        }
    }

    /// <summary>
    /// A gateway's start read every switch of every interface three times (<c>sysctl -a
    /// --pattern</c>, 0.27 s a read with 70 interfaces) and wrote <c>accept_ra</c> with one sysctl
    /// per interface, and its stop restored them one sysctl each: 1.6 s instead of 0.7 s to start on
    /// a host with 70 container veths (the scale review). Now the number of commands does not grow
    /// with the interfaces, and each of them still gets accept_ra 2 and its 1 back.
    /// </summary>
    [Fact]
    public async Task A_gateway_on_a_host_with_many_interfaces_reads_and_writes_their_switches_in_a_few_commands()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        using var state = new TemporaryDirectory();
        string suffix = Guid.NewGuid().ToString("N")[..6];
        var uplinks = Enumerable.Range(0, 20).Select(i => $"fzm{suffix}{i}").ToList();
        foreach (string uplink in uplinks)
        {
            await InsideAsync(ns, "ip", "link", "add", uplink, "type", "veth", "peer", "name", uplink + "p");
        }
        await InsideAsync(ns, "sysctl", "-q", "-w", $"net.ipv4.conf.{uplinks[0]}.forwarding=1");
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", "fzt0", "mode", "tun");
        var runner = new CountingRunner(Namespaced(ns));
        var setup = new InterfaceNetworkSetup("fzt0", runner, NullLogger.Instance, new InMemoryTunnelControl(), state.Path);

        await setup.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);
        Assert.True(runner.Runs["sysctl"] <= 12, $"{runner.Runs["sysctl"]} sysctl commands to start with {uplinks.Count * 2} interfaces");
        foreach (string uplink in uplinks)
        {
            Assert.Equal("2", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv6.conf.{uplink}.accept_ra")).Trim());
            Assert.Equal("2", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv6.conf.{uplink}p.accept_ra")).Trim());
        }
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", "net.ipv6.conf.default.accept_ra")).Trim()); // the default stays: later interfaces take 1
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.conf.fzt0.forwarding")).Trim());
        runner.Runs.Clear();

        await setup.TearDownAsync(CancellationToken.None);
        Assert.True(runner.Runs["sysctl"] <= 6, $"{runner.Runs["sysctl"]} sysctl commands to stop with {uplinks.Count * 2} interfaces");
        foreach (string uplink in uplinks)
        {
            Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv6.conf.{uplink}.accept_ra")).Trim());
            Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv6.conf.{uplink}p.accept_ra")).Trim());
        }
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv4.conf.{uplinks[0]}.forwarding")).Trim());
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv4.conf.{uplinks[1]}.forwarding")).Trim());
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
        Assert.False(File.Exists(setup.StateFile.Path));
    }

    /// <summary>
    /// The kernel writes the namespace's forwarding switch into every interface's own (and the
    /// default's): an interface an operator let forward while the namespace's switch was 0 (IPv4
    /// forwards by the receiving interface's switch) was left at 0 by a gateway's start and stop.
    /// Those at 1 are 1 again after the stop, also when two gateways stop in turn; those at 0 stay 0.
    /// </summary>
    [Fact]
    public async Task An_interface_that_forwarded_on_its_own_forwards_again_after_the_gateway_stops()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        using var state = new TemporaryDirectory();
        string routed = "fzr" + Guid.NewGuid().ToString("N")[..8];
        string plain = "fzp" + routed[3..];
        await InsideAsync(ns, "ip", "link", "add", routed, "type", "veth", "peer", "name", plain);
        foreach (string family in new[] { "ipv4", "ipv6" })
        {
            await InsideAsync(ns, "sysctl", "-q", "-w", $"net.{family}.conf.{routed}.forwarding=1");
        }
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
        var (one, two) = await TwoSetupsAsync(ns, state);

        await one.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);
        await two.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv4.conf.{plain}.forwarding")).Trim());
        await one.TearDownAsync(CancellationToken.None);
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", $"net.ipv4.conf.{plain}.forwarding")).Trim()); // forwarding stays on for two
        await two.TearDownAsync(CancellationToken.None);

        foreach (string family in new[] { "ipv4", "ipv6" })
        {
            Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", $"net.{family}.conf.all.forwarding")).Trim());
            Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", $"net.{family}.conf.{routed}.forwarding")).Trim());
            Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", $"net.{family}.conf.{plain}.forwarding")).Trim());
            Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", $"net.{family}.conf.default.forwarding")).Trim());
        }
        Assert.False(File.Exists(two.StateFile.Path));
    }

    /// <summary>What counts in the ruleset: a translating statement outside our own table, not a comment or a chain's type.</summary>
    [Fact]
    public void Only_a_translating_statement_of_a_table_not_ours_keeps_forwarding_on()
    {
        const string quiet = """
            table inet firezone-tunnel-wg0 {
            	chain postrouting {
            		type nat hook postrouting priority srcnat; policy accept;
            		iifname "wg0" oifname != "wg0" masquerade
            	}
            }
            table ip filter {
            	chain forward {
            		type filter hook forward priority filter; policy accept;
            		ip saddr 10.0.0.0/8 counter packets 0 bytes 0 accept comment "masquerade snat dnat"
            	}
            }
            """;
        Assert.Null(InterfaceNetworkSetup.OtherForwarder(quiet, "firezone-tunnel-wg0"));
        Assert.Equal("nftables table inet firezone-tunnel-wg1 says another gateway still forwards here",
            InterfaceNetworkSetup.OtherForwarder(quiet + "\ntable inet firezone-tunnel-wg1 {\n}\n", "firezone-tunnel-wg0"));
        Assert.StartsWith("nftables table ip nat translates addresses for another program (\"oifname != \"docker0\" ip saddr 172.17.0.0/16 counter packets 0 bytes 0 masquerade\")",
            InterfaceNetworkSetup.OtherForwarder(quiet + "\n" + """
                table ip nat {
                	chain POSTROUTING {
                		type nat hook postrouting priority srcnat; policy accept;
                		oifname != "docker0" ip saddr 172.17.0.0/16 counter packets 0 bytes 0 masquerade
                	}
                }
                """, "firezone-tunnel-wg0"));
    }

    /// <summary>
    /// As above, stopped the other way round: the first to start stops last. And a state file of
    /// another namespace with the same switch recorded is not adopted.
    /// </summary>
    [Fact]
    public async Task The_last_of_two_gateways_restores_forwarding_whichever_stops_first_and_only_its_own_namespace_counts()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        using var state = new TemporaryDirectory();
        // An instance in another namespace, where IPv6 forwarding was on before it started.
        new NetworkSetupStateFile(Path.Combine(state.Path, "elsewhere.json")).Save(new NetworkSetupState
        {
            Namespace = "net:[1]", Sysctl = { ["net.ipv6.conf.all.forwarding"] = "1" },
        });
        var (one, two) = await TwoSetupsAsync(ns, state);
        await one.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);
        await two.ApplyAsync(GatewayWithoutPeers(), CancellationToken.None);
        Assert.Equal("0", two.StateFile.Load()!.Sysctl["net.ipv6.conf.all.forwarding"]);

        await two.TearDownAsync(CancellationToken.None);
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
        await one.TearDownAsync(CancellationToken.None);
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv6.conf.all.forwarding")).Trim());
    }

    /// <summary>
    /// Two full tunnels (<c>AllowedIPs = 0.0.0.0/0, ::/0</c>) in one namespace share the rule
    /// <c>table main suppress_prefixlength 0</c> (the second finds it and adds no copy) and
    /// <c>src_valid_mark</c>. Stopping the first deleted the rule and set src_valid_mark back to 0
    /// under the second, whose unmarked packets then all went to its table (the LAN too) and whose
    /// replies to marked packets the reverse-path filter could drop. wg-quick's del_if deletes the
    /// rule too and never resets src_valid_mark; a stopping tunnel now leaves both while another
    /// tunnel's <c>not fwmark</c> rule is there. Found in the last session's review (closing note 29).
    /// </summary>
    [Fact]
    public async Task Stopping_one_full_tunnel_leaves_the_shared_rule_and_src_valid_mark_to_another_still_running()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        using var state = new TemporaryDirectory();
        TunnelConfig FullTunnel(int n) => new WgQuickConfigParser().Parse($"full{n}.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.7{n}.0.1/24, fd7{n}::1/64

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 0.0.0.0/0, ::/0
            """);
        var (one, two) = await TwoSetupsAsync(ns, state);
        await one.ApplyAsync(FullTunnel(1), CancellationToken.None);
        await two.ApplyAsync(FullTunnel(2), CancellationToken.None);
        Assert.Equal((51820u, 51821u), (one.DefaultRouteTable, two.DefaultRouteTable));

        await one.TearDownAsync(CancellationToken.None);
        foreach (var family in new[] { "-4", "-6" })
        {
            string rules = await InsideAsync(ns, "ip", family, "rule", "show");
            Assert.DoesNotContain("lookup 51820", rules);
            Assert.Contains("not from all fwmark 0xca6d lookup 51821", rules);
            Assert.Equal(1, CountLines(rules, "from all lookup main suppress_prefixlength 0"));
        }
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.conf.all.src_valid_mark")).Trim());

        await two.TearDownAsync(CancellationToken.None);
        foreach (var family in new[] { "-4", "-6" })
        {
            string rules = await InsideAsync(ns, "ip", family, "rule", "show");
            Assert.DoesNotContain("fwmark", rules);
            Assert.DoesNotContain("suppress_prefixlength", rules);
        }
        Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.conf.all.src_valid_mark")).Trim());
    }

    /// <summary>
    /// A full tunnel adds wg-quick's mark tables (the connection's mark given back to replies, for a
    /// strict reverse-path filter; packets for the tunnel's addresses from a non-local source on
    /// another interface dropped), one per family with a /0; a start after a kill (state file left)
    /// replaces them rather than adding copies, and the stop removes them. A gateway on the same
    /// host is not mistaken for them (OtherForwarder reads only inet tables).
    /// </summary>
    [Fact]
    public async Task A_full_tunnel_adds_a_mark_table_per_family_which_a_start_after_a_kill_replaces_and_the_stop_removes()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        using var state = new TemporaryDirectory();
        var config = new WgQuickConfigParser().Parse("full.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.76.0.1/24, fd76::1/64

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 0.0.0.0/0, ::/0
            """);
        var (one, _) = await TwoSetupsAsync(ns, state);
        await one.ApplyAsync(config, CancellationToken.None);
        string ip4 = await InsideAsync(ns, "nft", "list", "table", "ip", one.TableName);
        Assert.Contains("meta l4proto udp meta mark set ct mark", ip4);
        Assert.Contains("meta l4proto udp meta mark 0x0000ca6c ct mark set meta mark", ip4);
        Assert.Contains("ip daddr 10.76.0.1 fib saddr type != local drop", ip4);
        Assert.Contains("ip6 daddr fd76::1 fib saddr type != local drop", await InsideAsync(ns, "nft", "list", "table", "ip6", one.TableName));
        Assert.Null(InterfaceNetworkSetup.OtherForwarder(await InsideAsync(ns, "nft", "list", "ruleset"), "firezone-tunnel-other"));

        // Killed: the process and its device are gone, the tables and the state file stay.
        string name = one.TableName["firezone-tunnel-".Length..];
        await InsideAsync(ns, "ip", "link", "delete", name);
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", name, "mode", "tun");
        var again = new InterfaceNetworkSetup(name, new NamespaceRunner(Namespaced(ns)), NullLogger.Instance, new InMemoryTunnelControl(), state.Path);
        await again.ApplyAsync(config, CancellationToken.None);
        string tables = await InsideAsync(ns, "nft", "list", "tables");
        Assert.Equal(1, CountLines(tables, $"table ip {one.TableName}"));
        Assert.Equal(1, CountLines(tables, $"table ip6 {one.TableName}"));

        await again.TearDownAsync(CancellationToken.None);
        Assert.DoesNotContain(one.TableName, await InsideAsync(ns, "nft", "list", "tables"));
    }

    /// <summary>
    /// Without nft a full tunnel still starts: each family's mark table is a Warning that names the
    /// reverse-path filter, nothing is recorded for it (a later start after a kill has no table to
    /// delete), and the stop tries no nft and warns of nothing.
    /// </summary>
    [Fact]
    public async Task Without_nft_a_full_tunnel_starts_with_a_warning_per_family_and_records_no_mark_table()
    {
        using var state = new TemporaryDirectory();
        var runner = new RecordingRunner();
        var logger = new ListLogger();
        var setup = new InterfaceNetworkSetup("fzt0", new NoNftRunner(runner), logger, null, state.Path);
        var config = new WgQuickConfigParser().Parse("full.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.76.0.1/24, fd76::1/64
            FwMark = 0x1234

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 0.0.0.0/0, ::/0
            """);

        await setup.ApplyAsync(config, CancellationToken.None);

        var warnings = logger.At(LogLevel.Warning);
        Assert.Contains(warnings, m => m.StartsWith("Could not add nftables table ip firezone-tunnel-fzt0 ", StringComparison.Ordinal) && m.Contains("rp_filter", StringComparison.Ordinal));
        Assert.Contains(warnings, m => m.StartsWith("Could not add nftables table ip6 firezone-tunnel-fzt0 ", StringComparison.Ordinal) && m.Contains("rp_filter", StringComparison.Ordinal));
        Assert.Equal(2, warnings.Count());
        Assert.Empty(setup.StateFile.Load()!.MarkTables);

        int before = runner.Commands.Count;
        await setup.TearDownAsync(CancellationToken.None);
        Assert.DoesNotContain(runner.Commands.Skip(before), c => c.StartsWith("nft ", StringComparison.Ordinal));
        Assert.Equal(2, logger.At(LogLevel.Warning).Count());
    }

    /// <summary>nft is not installed; everything else goes to <paramref name="inner"/>.</summary>
    private sealed class NoNftRunner(ICommandRunner inner) : ICommandRunner
    {
        public Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string? stdin, CancellationToken cancellationToken) =>
            file == "nft"
                ? throw new StartupException("cannot run nft: No such file or directory") { NotInstalled = true }
                : inner.RunAsync(file, arguments, stdin, cancellationToken);
    }

    [Fact]
    public async Task A_named_table_route_is_added_not_replaced()
    {
        using var state = new TemporaryDirectory();
        var runner = new RecordingRunner();
        var config = new WgQuickConfigParser().Parse("t.conf", $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nTable = 7\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.88.0.0/16, ::/0\n");
        var setup = SetupOf(runner, state);
        await setup.ApplyAsync(config, CancellationToken.None); // no tunnel control needed: no fwmark outside Table = auto
        await setup.TearDownAsync(CancellationToken.None);
        Assert.Equal(
            [
                "ip route show default",
                "ip link set dev fzt0 mtu 1420",
                "ip link set dev fzt0 up",
                "ip -4 route add 10.88.0.0/16 dev fzt0 table 7",
                "ip -6 route add ::/0 dev fzt0 table 7",
                "ip -6 route delete ::/0 dev fzt0 table 7",
                "ip -4 route delete 10.88.0.0/16 dev fzt0 table 7",
            ],
            runner.Commands);
    }

    /// <summary>
    /// The instance before was SIGKILLed: its TUN device went with it (and so its routes), but its
    /// policy rules, nftables table and forwarding switches stayed, and so did its state file.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_start_over_a_killed_instance_leaves_one_copy_of_each_rule_and_a_clean_stop_restores_forwarding(bool stateFileSurvived)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzk" + Guid.NewGuid().ToString("N")[..8];
        var config = new WgQuickConfigParser().Parse("gw.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.83.0.1/24, fd83::1/64
            #! Role = gateway

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = 10.88.0.0/16, 0.0.0.0/0, ::/0
            """);
        foreach (var key in new[] { "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv4.conf.all.src_valid_mark" })
        {
            Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", key)).Trim());
        }
        using var state = new TemporaryDirectory();
        var runner = new NamespaceRunner(Namespaced(ns));

        await InsideAsync(ns, "ip", "tuntap", "add", "dev", name, "mode", "tun");
        var killed = new InterfaceNetworkSetup(name, runner, NullLogger.Instance, new InMemoryTunnelControl(), state.Path);
        await killed.ApplyAsync(config, CancellationToken.None);
        Assert.True(File.Exists(killed.StateFile.Path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(killed.StateFile.Path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(state.Path));
        // SIGKILL: no teardown; the kernel removes the TUN device with its addresses and routes.
        await InsideAsync(ns, "ip", "link", "delete", name);
        if (!stateFileSurvived)
        {
            LeftoverFile.Delete(killed.StateFile.Path);
        }

        await InsideAsync(ns, "ip", "tuntap", "add", "dev", name, "mode", "tun");
        var restarted = new InterfaceNetworkSetup(name, runner, NullLogger.Instance, new InMemoryTunnelControl(), state.Path);
        await restarted.ApplyAsync(config, CancellationToken.None);

        Assert.Equal(51820u, restarted.DefaultRouteTable);
        foreach (var family in new[] { "-4", "-6" })
        {
            string rules = await InsideAsync(ns, "ip", family, "rule", "show");
            Assert.Equal(1, CountLines(rules, "not from all fwmark 0xca6c lookup 51820"));
            Assert.Equal(1, CountLines(rules, "from all lookup main suppress_prefixlength 0"));
        }
        string table = await InsideAsync(ns, "nft", "list", "table", "inet", restarted.TableName);
        Assert.Equal(1, CountLines(table, "masquerade"));
        Assert.Equal(1, CountLines(table, "chain postrouting"));
        Assert.Contains($"dev {name}", await InsideAsync(ns, "ip", "-4", "route", "get", "198.51.100.1"));
        Assert.Equal("1", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());

        await restarted.TearDownAsync(CancellationToken.None);
        foreach (var family in new[] { "-4", "-6" })
        {
            string rules = await InsideAsync(ns, "ip", family, "rule", "show");
            Assert.DoesNotContain("fwmark", rules);
            Assert.DoesNotContain("suppress_prefixlength", rules);
        }
        Assert.DoesNotContain(restarted.TableName, await InsideAsync(ns, "nft", "list", "tables"));
        Assert.False(File.Exists(restarted.StateFile.Path));
        if (stateFileSurvived)
        {
            // The originals are the values before the killed instance, not the "1" it left.
            Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
            Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv6.conf.all.forwarding")).Trim());
            Assert.Equal("0", (await InsideAsync(ns, "sysctl", "-n", "net.ipv4.conf.all.src_valid_mark")).Trim());
        }
    }

    [Fact]
    public async Task A_state_file_is_written_before_the_first_change_and_its_originals_win()
    {
        using var state = new TemporaryDirectory();
        var runner = new RecordingRunner();
        var config = GatewayWithoutPeers();
        var first = SetupOf(runner, state);
        runner.Sysctl["net.ipv6.conf.all.forwarding"] = "1"; // already on before us: not ours to restore
        await first.ApplyAsync(config, CancellationToken.None);
        var saved = first.StateFile.Load()!;
        // With it what the kernel resets when IPv4 forwarding goes off (0 in this model).
        Assert.Equal(new Dictionary<string, string> { ["net.ipv4.conf.all.accept_redirects"] = "0", ["net.ipv4.ip_forward"] = "0" }, saved.Sysctl);
        Assert.True(saved.NftablesTable);

        // Killed; the next instance reads "1" from sysctl but restores the recorded "0".
        runner.Commands.Clear();
        var second = SetupOf(runner, state);
        await second.ApplyAsync(config, CancellationToken.None);
        Assert.Equal("nft delete table inet firezone-tunnel-fzt0", runner.Commands[0]); // the leftover, before anything else
        Assert.DoesNotContain(runner.Commands, c => c.StartsWith("sysctl -q -w", StringComparison.Ordinal)); // both already 1
        await second.TearDownAsync(CancellationToken.None);
        Assert.Equal("0", runner.Sysctl["net.ipv4.ip_forward"]);
        Assert.Equal("1", runner.Sysctl["net.ipv6.conf.all.forwarding"]);
        Assert.False(File.Exists(second.StateFile.Path));
    }

    [Fact]
    public async Task A_failed_restore_keeps_the_state_file_for_the_next_start()
    {
        using var state = new TemporaryDirectory();
        var runner = new FailingSysctlWriteRunner();
        var config = GatewayWithoutPeers();
        var setup = SetupOf(runner, state);
        await setup.ApplyAsync(config, CancellationToken.None);
        runner.FailWrites = true;
        await setup.TearDownAsync(CancellationToken.None);
        var saved = setup.StateFile.Load()!;
        Assert.Equal(["net.ipv4.conf.all.accept_redirects", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"], saved.Sysctl.Keys.Order());
        Assert.False(saved.NftablesTable); // the table was removed
    }

    /// <summary>
    /// A container's /proc/sys is read-only (Docker mounts it so): a full tunnel whose
    /// src_valid_mark is 0 cannot start, and said so, but the stop after the failed start then
    /// warned "Could not restore net.ipv4.conf.all.src_valid_mark: ... permission denied" and
    /// kept it in the state file, for a switch that was never changed. A write that failed records
    /// nothing to restore; a gateway's forwarding that could not be switched on neither (nor the
    /// accept_redirects recorded with it).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_switch_that_could_not_be_set_is_not_restored_at_the_stop(bool gateway)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzr" + Guid.NewGuid().ToString("N")[..8];
        var config = new WgQuickConfigParser().Parse("full.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.84.0.1/24
            {(gateway ? "#! Role = gateway" : "")}

            [Peer]
            PublicKey = {TestKeys.New().ToBase64()}
            AllowedIPs = {(gateway ? "10.84.0.2/32" : "0.0.0.0/0")}
            """);
        await InsideAsync(ns, "ip", "tuntap", "add", "dev", name, "mode", "tun");
        using var state = new TemporaryDirectory();
        var logger = new ListLogger();
        var setup = new InterfaceNetworkSetup(name, new ReadOnlySysctlRunner(new NamespaceRunner(Namespaced(ns))), logger, new InMemoryTunnelControl(), state.Path);

        await Assert.ThrowsAsync<StartupException>(() => setup.ApplyAsync(config, CancellationToken.None));
        await setup.TearDownAsync(CancellationToken.None);

        // For a gateway also accept_redirects, which the kernel changes only with ip_forward.
        Assert.DoesNotContain(logger.At(LogLevel.Warning), m => m.Contains("Could not restore", StringComparison.Ordinal));
        Assert.False(File.Exists(setup.StateFile.Path) && setup.StateFile.Load()!.Sysctl.Count > 0);
    }

    /// <summary>Every <c>sysctl -w</c> fails as on a read-only /proc/sys; the rest runs through <paramref name="inner"/>.</summary>
    private sealed class ReadOnlySysctlRunner(ICommandRunner inner) : ICommandRunner
    {
        public Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string? stdin, CancellationToken cancellationToken) =>
            file == "sysctl" && arguments[0] == "-q"
                ? throw new StartupException($"sysctl {string.Join(' ', arguments)}: sysctl: permission denied on key")
                : inner.RunAsync(file, arguments, stdin, cancellationToken);
    }

    private sealed class FailingSysctlWriteRunner : ICommandRunner
    {
        public bool FailWrites { get; set; }

        public Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string? stdin, CancellationToken cancellationToken) =>
            file == "sysctl" && arguments[0] == "-q" && FailWrites
                ? throw new StartupException("sysctl: permission denied")
                : Task.FromResult(file == "sysctl" ? "0\n" : "");
    }

    [Fact]
    public async Task A_service_that_never_started_leaves_another_instance_s_state_file_alone()
    {
        using var state = new TemporaryDirectory();
        var runner = new RecordingRunner();
        var config = GatewayWithoutPeers();
        var running = SetupOf(runner, state);
        await running.ApplyAsync(config, CancellationToken.None);
        var options = new DaemonOptions
        {
            InterfaceName = "fzt0",
            Config = config,
            Log = new LogOptions { Console = false },
        };
        // A second daemon for the same interface, whose TUN device was busy: the host stops every service.
        runner.Commands.Clear();
        var second = new NetworkSetupHostedService(options, runner, NullLogger<NetworkSetupHostedService>.Instance, null, state.Path);
        await second.StopAsync(CancellationToken.None);
        Assert.Empty(runner.Commands);
        Assert.True(File.Exists(running.StateFile.Path));
        await running.TearDownAsync(CancellationToken.None);
    }

    [Theory]
    [InlineData("0:\tfrom all lookup local\n32765:\tnot from all fwmark 0xca6c lookup 51820\n", "not from all fwmark 0xca6c lookup ", true)]
    [InlineData("32765:\tfrom all fwmark 0xca6c lookup 51820\n", "not from all fwmark 0xca6c lookup ", false)]
    [InlineData("32765:\tnot from all fwmark 0xca6cd lookup 51820\n", "not from all fwmark 0xca6c lookup ", false)]
    [InlineData("32764:\tfrom all lookup main suppress_prefixlength 0\n32766:\tfrom all lookup main\n", "from all lookup main suppress_prefixlength 0", true)]
    [InlineData("32764:\tfrom all lookup main suppress_prefixlength 0 proto static\n", "from all lookup main suppress_prefixlength 0", true)]
    [InlineData("32764:\tfrom all lookup main suppress_prefixlength 64\n32766:\tfrom all lookup main\n", "from all lookup main suppress_prefixlength 0", false)]
    [InlineData("", "from all lookup main suppress_prefixlength 0", false)]
    public void Existing_policy_rules_are_recognised_in_ip_rule_show(string shown, string rule, bool listed)
    {
        Assert.Equal(listed, InterfaceNetworkSetup.ListsRule(shown, rule));
    }
}
