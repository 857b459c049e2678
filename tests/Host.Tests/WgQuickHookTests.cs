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
}
