using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Network;
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
            AllowedIPs = 10.77.0.2/32, 10.88.0.0/16, fd88::/64, 0.0.0.0/0
            """);
        await RunOkAsync("ip", "netns", "add", netns);
        try
        {
            await RunOkAsync("ip", "-n", netns, "tuntap", "add", "dev", name, "mode", "tun");
            var setup = new InterfaceNetworkSetup(name, new NamespaceRunner(netns), NullLogger.Instance, new InMemoryTunnelControl());
            await setup.ApplyAsync(config, CancellationToken.None);

            string addresses = await RunOkAsync("ip", "-n", netns, "address", "show", "dev", name);
            Assert.Contains("inet 10.77.0.1/24", addresses);
            Assert.Contains("inet6 fd77::1/64", addresses);
            Assert.Contains(",UP>", await RunOkAsync("ip", "-n", netns, "link", "show", "dev", name)); // administratively up
            string routes4 = await RunOkAsync("ip", "-n", netns, "-4", "route", "show", "dev", name);
            Assert.Contains("10.77.0.2 ", routes4);
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
            var setup = new InterfaceNetworkSetup(name, new NamespaceRunner(netns), NullLogger.Instance, control);
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
        Assert.StartsWith("ip -4 address add 10.99.0.1/24 dev fzt-missing0: ", error.Message);
    }
}
