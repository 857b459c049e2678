using Firezone.Actors.Host.Config;
using static Tmds.Linux.LibC;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Service mode gives the file's DNS to resolvconf as wg-quick's set_dns does, and takes it back on
/// stop (unset_dns). The machine's resolvconf is not touched: a stand-in on the daemon's PATH
/// records what it is asked.
/// </summary>
public sealed class DnsResolvconfTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public void DNS_entries_that_are_addresses_are_servers_and_the_rest_search_domains_as_in_wg_quick()
    {
        var config = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf",
            $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nDNS = 10.0.0.53, fd00::53 example.internal\nDNS = corp.example,192.0.2.53\n");
        Assert.Equal(["10.0.0.53", "fd00::53", "192.0.2.53"], config.Interface.Dns);
        Assert.Equal(["example.internal", "corp.example"], config.Interface.DnsSearch);
        Assert.Equal(3, config.Interface.DnsLine);
        Assert.Empty(config.Notes);
    }

    /// <summary>A directory with a resolvconf that appends its arguments and stdin to a record file, and exits with <paramref name="exitCode"/>.</summary>
    private static (string Directory, string Record) FakeResolvconf(string name, int exitCode)
    {
        string directory = Path.Combine(Path.GetTempPath(), name + "-bin");
        Directory.CreateDirectory(directory);
        string record = Path.Combine(directory, "calls");
        string script = Path.Combine(directory, "resolvconf");
        // A failing one fails only to add (-a); removing (-d) works, as the teardown after the failed start needs.
        // While a file "fail-d" is in the directory, removing fails too.
        File.WriteAllText(script, $"#!/bin/sh\necho \"args: $*\" >> {record}\ncat >> {record}\n"
            + $"if [ \"$1\" = -d ] && [ -e {directory}/fail-d ]; then echo 'resolvconf: busy' >&2; exit 1; fi\n"
            + (exitCode == 0 ? "" : $"[ \"$1\" = -a ] || exit 0\necho 'resolvconf: cannot write the record' >&2\nexit {exitCode}\n"));
        File.SetUnixFileMode(script, (UnixFileMode)0x1ed); // 0755
        return (directory, record);
    }

    private static string[] WithPath(string directory) => ["env", $"PATH={directory}:{Environment.GetEnvironmentVariable("PATH")}"];

    [Fact]
    public async Task Up_gives_the_DNS_to_resolvconf_as_wg_quick_does_and_takes_it_back_on_stop()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        var (bin, record) = FakeResolvconf(name, 0);
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.66.0.1/24\nDNS = 10.66.0.53, fd66::53, example.internal\n");
        try
        {
            await using var daemon = DaemonProcess.StartUnder(ns, name, WithPath(bin), "up", "--config", file);
            using (var bound = new CancellationTokenSource(Bound))
            {
                while (!File.Exists(daemon.LogFile) || !(await File.ReadAllTextAsync(daemon.LogFile, bound.Token)).Contains($"running interface {name}", StringComparison.Ordinal))
                {
                    await Task.Delay(50, bound.Token);
                }
            }
            Assert.Equal(
            [
                $"args: -a {name} -m 0 -x",
                "nameserver 10.66.0.53",
                "nameserver fd66::53",
                "search example.internal",
            ], await File.ReadAllLinesAsync(record));
            Assert.Contains($"DNS of {name}: 10.66.0.53, fd66::53; search example.internal", await File.ReadAllTextAsync(daemon.LogFile));
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            Assert.Equal($"args: -d {name} -f", (await File.ReadAllLinesAsync(record))[^1]);
        }
        finally
        {
            File.Delete(file);
            Directory.Delete(bin, recursive: true);
        }
    }

    /// <summary>
    /// As wg-quick up: when resolvconf fails the start fails, naming the DNS line; the record it may
    /// have written is taken back (-d -f) and nothing is left, not even the state file.
    /// </summary>
    [Fact]
    public async Task A_resolvconf_that_fails_fails_the_start_naming_the_DNS_line()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        var (bin, record) = FakeResolvconf(name, 1);
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.66.0.1/24\nDNS = 10.66.0.53\n");
        try
        {
            var result = await ns.ExecAsync("env", [.. WithPath(bin)[1..], DaemonProcess.Executable, "up", "--config", file, "--log-file", log], timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(1, result.ExitCode);
            Assert.Equal($"firezone-tunnel: {file}:4: DNS: resolvconf -a {name} -m 0 -x: resolvconf: cannot write the record "
                + "(wg-quick up fails here too: resolvconf could not take the record)\n", result.Stderr);
            Assert.False(await ns.HasLinkAsync(name));
            Assert.Equal($"args: -d {name} -f", (await File.ReadAllLinesAsync(record))[^1]);
            Assert.False(File.Exists(Network.NetworkSetupStateFile.For(name, null).Path));
        }
        finally
        {
            File.Delete(file);
            File.Delete(log);
            Directory.Delete(bin, recursive: true);
        }
    }

    /// <summary>
    /// Found in the walk-through: on a host without any resolvconf, the failed start left
    /// /run/firezone-tunnel/NAME.json with the record it never wrote, and every later start warned
    /// that an instance "did not stop cleanly" and, twice, that it could not remove that record.
    /// </summary>
    [Fact]
    public async Task Without_a_resolvconf_the_failed_start_leaves_no_state_file()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        // A PATH with ip alone: no resolvconf, whatever the machine has installed.
        string bin = Path.Combine(Path.GetTempPath(), name + "-bin");
        Directory.CreateDirectory(bin);
        File.CreateSymbolicLink(Path.Combine(bin, "ip"), new[] { "/usr/sbin/ip", "/usr/bin/ip", "/sbin/ip", "/bin/ip" }.First(File.Exists));
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        string state = Network.NetworkSetupStateFile.For(name, null).Path;
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.66.0.1/24\nDNS = 10.66.0.53\n");
        try
        {
            var result = await ns.ExecAsync("env", [$"PATH={bin}", DaemonProcess.Executable, "up", "--config", file, "--log-file", log], timeout: TimeSpan.FromSeconds(30));
            // EX_CONFIG, as for a mistake in the file: every start would fail the same way until
            // resolvconf is installed, and with exit code 1 the unit restarted it every 2.2 s forever.
            Assert.Equal(78, result.ExitCode);
            Assert.Equal($"firezone-tunnel: {file}:4: DNS: cannot run resolvconf: no such command on PATH "
                + "(wg-quick up fails here too: install resolvconf, openresolv or systemd-resolved, or take the DNS line out)\n", result.Stderr);
            Assert.False(await ns.HasLinkAsync(name));
            Assert.False(File.Exists(state));
        }
        finally
        {
            File.Delete(file);
            File.Delete(log);
            File.Delete(state);
            Directory.Delete(bin, recursive: true);
        }
    }

    /// <summary>A record that cannot be removed on stop stays in the state file, and the next start removes it first.</summary>
    [Fact]
    public async Task A_record_that_cannot_be_removed_on_stop_is_removed_by_the_next_start()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        var (bin, record) = FakeResolvconf(name, 0);
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        string state = Network.NetworkSetupStateFile.For(name, null).Path;
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nDNS = 10.66.0.53\n");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(bin, "fail-d"), "");
            string kept = "";
            await RunUntilReadyThenStopAsync(ns, name, bin, file, async () =>
            {
                Assert.True(File.Exists(state));
                kept = await File.ReadAllTextAsync(state);
                Assert.Contains($"\"Resolvconf\": \"{name}\"", kept);
            });

            // DaemonProcess's clean-up deletes the state file; the machine would have kept it.
            await File.WriteAllTextAsync(state, kept);
            File.Delete(Path.Combine(bin, "fail-d"));
            File.Delete(record);
            string log = await RunUntilReadyThenStopAsync(ns, name, bin, file, () =>
            {
                Assert.False(File.Exists(state));
                return Task.CompletedTask;
            });
            Assert.Equal([$"args: -d {name} -f", $"args: -a {name} -m 0 -x", "nameserver 10.66.0.53", $"args: -d {name} -f"], await File.ReadAllLinesAsync(record));
            Assert.Contains("did not stop cleanly", log);
        }
        finally
        {
            File.Delete(file);
            File.Delete(state);
            Directory.Delete(bin, recursive: true);
        }
    }

    /// <summary>Starts `up`, stops it once ready, runs <paramref name="afterStop"/> (before the test's clean-up of the daemon's files) and returns its log.</summary>
    private static async Task<string> RunUntilReadyThenStopAsync(NetworkNamespace ns, string name, string bin, string file, Func<Task> afterStop)
    {
        await using var daemon = DaemonProcess.StartUnder(ns, name, WithPath(bin), "up", "--config", file);
        using (var bound = new CancellationTokenSource(Bound))
        {
            while (!File.Exists(daemon.LogFile) || !(await File.ReadAllTextAsync(daemon.LogFile, bound.Token)).Contains($"running interface {name}", StringComparison.Ordinal))
            {
                await Task.Delay(50, bound.Token);
            }
        }
        daemon.Signal(SIGTERM);
        Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
        await afterStop();
        return await File.ReadAllTextAsync(daemon.LogFile);
    }
}
