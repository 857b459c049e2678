using System.Text.Json;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Uapi;
using static Tmds.Linux.LibC;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Service mode runs the file's PreUp, PostUp, PreDown and PostDown lines where wg-quick runs them:
/// PreUp before the interface exists, PostUp once it has its addresses, PreDown before it is taken
/// down and PostDown after; %i is the interface's name. A failing up hook fails the start, removes
/// what was made and runs no down hook, as in wg-quick.
/// </summary>
public sealed class WgQuickHookTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public void The_parser_keeps_the_hooks_in_the_files_order_with_their_lines()
    {
        var config = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf",
            $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nPostUp = iptables -A FORWARD -i %i -j ACCEPT; echo a=b\nPreUp = echo pre\nPostUp = echo second # comment\nPreDown = true\nPostDown = echo done\n");
        Assert.Equal(
        [
            new WgQuickHook(WgQuickHookStage.PostUp, "iptables -A FORWARD -i %i -j ACCEPT; echo a=b", 3),
            new WgQuickHook(WgQuickHookStage.PreUp, "echo pre", 4),
            new WgQuickHook(WgQuickHookStage.PostUp, "echo second", 5),
            new WgQuickHook(WgQuickHookStage.PreDown, "true", 6),
            new WgQuickHook(WgQuickHookStage.PostDown, "echo done", 7),
        ], config.Interface.Hooks);
        Assert.Empty(config.Notes);
    }

    private static string Probe(string stage, string trace) =>
        $"echo \"{stage} %i $(ip link show %i >/dev/null 2>&1 && echo exists || echo absent) $(ip -o -4 address show dev %i 2>/dev/null | grep -c 10.66.0.1)\" >> {trace}";

    [Fact]
    public async Task Up_runs_each_hook_where_wg_quick_runs_it()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        string trace = Path.Combine(Path.GetTempPath(), name + ".trace");
        await File.WriteAllTextAsync(file, $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.66.0.1/24
            PreUp = {Probe("preup", trace)}
            PostUp = {Probe("postup", trace)}; echo said-on-stdout; echo said-on-stderr >&2
            PreDown = {Probe("predown", trace)}
            PostDown = {Probe("postdown", trace)}
            """);
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", file);
            using (var bound = new CancellationTokenSource(Bound))
            {
                while (!File.Exists(trace) || !(await File.ReadAllTextAsync(trace, bound.Token)).Contains("postup", StringComparison.Ordinal))
                {
                    await Task.Delay(50, bound.Token);
                }
            }
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            Assert.Equal(
            [
                $"preup {name} absent 0",
                $"postup {name} exists 1",
                $"predown {name} exists 1",
                $"postdown {name} absent 0",
            ], await File.ReadAllLinesAsync(trace));
            var lines = (await File.ReadAllLinesAsync(daemon.LogFile)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Contains(lines, l => l.GetProperty("severity").GetString() == "Information"
                && l.GetProperty("message").GetString()!.StartsWith($"[#] echo \"postup {name} ", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.GetProperty("severity").GetString() == "Information" && l.GetProperty("message").GetString() == "PostUp: said-on-stdout");
            Assert.Contains(lines, l => l.GetProperty("severity").GetString() == "Warning" && l.GetProperty("message").GetString() == "PostUp: said-on-stderr");
        }
        finally
        {
            File.Delete(file);
            File.Delete(trace);
        }
    }

    [Fact]
    public async Task A_failing_PostUp_fails_the_start_removes_the_interface_and_runs_no_down_hook()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        string trace = Path.Combine(Path.GetTempPath(), name + ".trace");
        await File.WriteAllTextAsync(file, $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            Address = 10.66.0.1/24
            PostUp = {Probe("postup", trace)}; echo no-such-chain >&2; false; echo not-reached >> {trace}
            PreDown = {Probe("predown", trace)}
            PostDown = {Probe("postdown", trace)}
            """);
        try
        {
            var result = await ns.ExecAsync(DaemonProcess.Executable, ["up", "--config", file, "--log-file", Path.Combine(Path.GetTempPath(), $"fzt-{name}.log")],
                timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(1, result.ExitCode);
            Assert.Equal($"firezone-tunnel: {file}:4: PostUp failed with exit code 1: no-such-chain\n", result.Stderr);
            Assert.Equal([$"postup {name} exists 1"], await File.ReadAllLinesAsync(trace));
            Assert.False(await ns.HasLinkAsync(name));
            Assert.False(File.Exists(UapiSocketPath.For(name)));
        }
        finally
        {
            File.Delete(file);
            File.Delete(trace);
            File.Delete(Path.Combine(Path.GetTempPath(), $"fzt-{name}.log"));
        }
    }

    private static async Task WaitForLogAsync(DaemonProcess daemon, string text)
    {
        using var bound = new CancellationTokenSource(Bound);
        while (!File.Exists(daemon.LogFile) || !(await File.ReadAllTextAsync(daemon.LogFile, bound.Token)).Contains(text, StringComparison.Ordinal))
        {
            await Task.Delay(50, bound.Token);
        }
    }

    private static async Task<string> WriteConfigAsync(string name, string hooks)
    {
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.66.0.1/24\n{hooks}");
        return file;
    }

    /// <summary>
    /// `PostUp = watcher &amp;`: the job keeps the hook's output open; wg-quick does not wait for it
    /// and neither may the start (it hung until the job ended).
    /// </summary>
    [Fact]
    public async Task A_background_job_started_by_a_hook_does_not_hold_up_the_start()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string pidFile = Path.Combine(Path.GetTempPath(), name + ".pid");
        string file = await WriteConfigAsync(name, $"PostUp = sleep 60 & echo $! > {pidFile}; echo started\n");
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", file);
            await WaitForLogAsync(daemon, $"running interface {name}");
            Assert.Contains("PostUp: started", await File.ReadAllTextAsync(daemon.LogFile));
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
        }
        finally
        {
            if (File.Exists(pidFile) && int.TryParse((await File.ReadAllTextAsync(pidFile)).Trim(), out int pid))
            {
                kill(pid, SIGKILL);
            }
            File.Delete(pidFile);
            File.Delete(file);
        }
    }

    /// <summary>A PreDown that never ends is stopped after its limit; the interface still goes and PostDown, as in wg-quick after a failed PreDown, does not run.</summary>
    [Fact]
    public async Task A_PreDown_that_hangs_is_stopped_and_the_interface_still_goes()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = await WriteConfigAsync(name, "PreDown = sleep 60\nPostDown = echo post-down-ran\n");
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", file);
            await WaitForLogAsync(daemon, $"running interface {name}");
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            string log = await File.ReadAllTextAsync(daemon.LogFile);
            Assert.Contains("PreDown did not finish within 5 s: its hook was stopped", log);
            Assert.Contains("PostDown not run: a PreDown failed", log);
            Assert.DoesNotContain("post-down-ran", log);
            Assert.False(await ns.HasLinkAsync(name));
            Assert.Equal("", (await ProcessRunner.RunAsync("ip", ["netns", "pids", ns.Name])).Stdout);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>systemctl stop while a PreUp runs: the hook is stopped, nothing is left, and it is a stop (exit 0), not a failure.</summary>
    [Fact]
    public async Task A_stop_during_an_up_hook_stops_the_hook_and_exits_cleanly()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = await WriteConfigAsync(name, "PreUp = sleep 60\n");
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", file);
            await WaitForLogAsync(daemon, "[#] sleep 60");
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            string log = await File.ReadAllTextAsync(daemon.LogFile);
            Assert.Contains($"Interface {name} stopped while starting", log);
            Assert.DoesNotContain("Unexpected failure", log);
            Assert.Equal("", await daemon.Stderr);
            Assert.False(await ns.HasLinkAsync(name));
            Assert.Equal("", (await ProcessRunner.RunAsync("ip", ["netns", "pids", ns.Name])).Stdout);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>As wg-quick's set -o pipefail: a pipeline fails when any part does; a failing PreUp creates nothing.</summary>
    [Fact]
    public async Task A_PreUp_whose_pipeline_fails_creates_nothing()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = await WriteConfigAsync(name, "PreUp = false | true\n");
        try
        {
            var result = await ns.ExecAsync(DaemonProcess.Executable, ["up", "--config", file, "--log-file", Path.Combine(Path.GetTempPath(), $"fzt-{name}.log")],
                timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(1, result.ExitCode);
            Assert.Equal($"firezone-tunnel: {file}:4: PreUp failed with exit code 1\n", result.Stderr);
            Assert.False(await ns.HasLinkAsync(name));
            Assert.False(File.Exists(UapiSocketPath.For(name)));
        }
        finally
        {
            File.Delete(file);
            File.Delete(Path.Combine(Path.GetTempPath(), $"fzt-{name}.log"));
        }
    }

    /// <summary>
    /// systemctl stop sends SIGTERM to the whole unit, the hook too, and the hook may end first
    /// (exit code 143): still a stop, not a failed start.
    /// </summary>
    [Fact]
    public async Task A_stop_that_reaches_the_hook_before_the_daemon_is_still_a_stop()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = await WriteConfigAsync(name, "PreUp = sleep 60\n");
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", file);
            await WaitForLogAsync(daemon, "[#] sleep 60");
            var pids = (await ProcessRunner.RunAsync("ip", ["netns", "pids", ns.Name])).Stdout
                .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).Where(p => p != daemon.Pid).ToList();
            Assert.NotEmpty(pids);
            foreach (int pid in pids)
            {
                kill(pid, SIGTERM);
            }
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            Assert.Contains($"Interface {name} stopped while starting", await File.ReadAllTextAsync(daemon.LogFile));
            Assert.Equal("", await daemon.Stderr);
            Assert.False(await ns.HasLinkAsync(name));
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// The interface deleted while a PostUp runs is a stop, as deleting it is at any other time
    /// (wg-quick down's way with a userspace daemon): exit 0 with the reason, the hook stopped.
    /// </summary>
    [Fact]
    public async Task The_interface_deleted_during_PostUp_stops_the_start_cleanly()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = await WriteConfigAsync(name, "PostUp = ip link del %i; sleep 10\n");
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        try
        {
            var result = await ns.ExecAsync(DaemonProcess.Executable, ["up", "--config", file, "--log-file", log], timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(0, result.ExitCode);
            Assert.Equal("", result.Stderr);
            Assert.Contains($"Interface {name} stopped while starting: ", await File.ReadAllTextAsync(log));
            Assert.DoesNotContain("A task was canceled", await File.ReadAllTextAsync(log));
            Assert.Equal("", (await ProcessRunner.RunAsync("ip", ["netns", "pids", ns.Name])).Stdout);
        }
        finally
        {
            File.Delete(file);
            File.Delete(log);
        }
    }

    /// <summary>As wg-quick up ("`wg0' already exists"): a name a link already has stops the start before PreUp runs.</summary>
    [Fact]
    public async Task An_interface_name_that_exists_stops_the_start_before_PreUp()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string marker = Path.Combine(Path.GetTempPath(), name + ".preup");
        string file = await WriteConfigAsync(name, $"PreUp = touch {marker}\n");
        string log = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        try
        {
            Assert.Equal(0, (await ns.ExecAsync("ip", ["link", "add", name, "type", "veth", "peer", "name", name + "p"])).ExitCode);
            var result = await ns.ExecAsync(DaemonProcess.Executable, ["up", "--config", file, "--log-file", log], timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(1, result.ExitCode);
            Assert.Equal($"firezone-tunnel: {name} already exists: no PreUp run (wg-quick up stops there too)\n", result.Stderr);
            Assert.False(File.Exists(marker));
            Assert.True(await ns.HasLinkAsync(name)); // the other link is left alone
        }
        finally
        {
            File.Delete(file);
            File.Delete(marker);
            File.Delete(log);
        }
    }
}
