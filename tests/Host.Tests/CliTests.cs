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
        foreach (var expected in new[] { "Usage:", "INTERFACE", "-f, --foreground", "--log-file", "--reply-poll-us", "--read-moderation-us", "--no-udp-coalescing", "up", "show", "--version" })
        {
            Assert.Contains(expected, result.Stdout);
        }
        var up = await RunAsync("up", "--help");
        Assert.Equal(0, up.ExitCode);
        Assert.Contains("-c, --config", up.Stdout);
    }

    [Fact]
    public async Task Version_prints_the_assembly_version()
    {
        var result = await RunAsync("--version");
        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("0.1.0", result.Stdout);
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
            Assert.Equal(1, result.ExitCode);
            Assert.Equal($"{file}:6: AllowedIPs: an entry is not a CIDR prefix (address/length)\n", result.Stderr);
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

    [Fact]
    public async Task A_missing_config_file_is_named()
    {
        string file = Path.Combine(Path.GetTempPath(), UapiServerFixture.UniqueName() + ".conf");
        var result = await RunAsync("up", "--config", file);
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith($"{file}:0: cannot read the file", result.Stderr);
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
        Assert.StartsWith($"firezone-tunnel: {UapiSocketPath.For(name)}: ", result.Stderr);
        Assert.Single(result.Stderr.TrimEnd('\n').Split('\n'));
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
