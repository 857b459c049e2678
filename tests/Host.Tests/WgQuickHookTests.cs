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

    /// <summary>
    /// wg-quick exports <c>LC_ALL=C</c> before it evals a hook, so a hook's commands read and write
    /// numbers, sort and match characters the same on every host. The daemon ran its hooks in its
    /// own locale (under systemd the system's <c>LANG</c>, say de_DE.UTF-8): the same file's
    /// <c>printf %.1f 1.5</c> failed there ("invalid number") and <c>sort</c> ordered differently
    /// (the wgquick review, 2026-11-29: <c>env</c> in a PostUp under wg-quick and here).
    /// </summary>
    [Fact]
    public async Task A_hook_runs_in_the_C_locale_as_wg_quick_runs_it()
    {
        string trace = await TraceOfPreUpAsync("fzt-locale", trace => $"echo \"LC_ALL=$LC_ALL\" > {trace}");
        Assert.Equal("LC_ALL=C\n", trace);
    }

    /// <summary>
    /// A hook starts with SIGPIPE at its default, as under wg-quick: .NET ignores SIGPIPE and an
    /// ignored signal survives exec, so `seq 1 10000000 | head -1` wrote "Broken pipe" (and ran to
    /// its end) and a program a hook started kept SIGPIPE ignored (the wgquick review, 2026-11-29:
    /// SigIgn 0x1000 in a PostUp's /proc/self/status here, 0 under wg-quick).
    /// </summary>
    [Fact]
    public async Task A_hook_starts_with_SIGPIPE_at_its_default_as_under_wg_quick()
    {
        string[] lines = (await TraceOfPreUpAsync("fzt-sigpipe",
            trace => $"grep SigIgn /proc/self/status > {trace}; seq 1 10000000 | head -1 >> {trace} 2>&1 || true"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        ulong ignored = Convert.ToUInt64(lines[0].Split('\t')[1], 16);
        Assert.True((ignored & (1UL << (13 - 1))) == 0, $"SIGPIPE ignored in the hook: {lines[0]}");
        Assert.Equal(["1"], lines[1..]);
    }

    /// <summary>
    /// Runs one PreUp hook, <paramref name="hook"/> of a trace file's path, straight through the
    /// runner (no namespace, no interface); the trace file's text, the file removed.
    /// </summary>
    private static async Task<string> TraceOfPreUpAsync(string name, Func<string, string> hook)
    {
        string trace = Path.Combine(Path.GetTempPath(), name + "-" + Guid.NewGuid().ToString("N")[..8] + ".trace");
        try
        {
            var hooks = new[] { new WgQuickHook(WgQuickHookStage.PreUp, hook(trace), 4) };
            var runner = new Network.WgQuickHookRunner(name, trace, hooks, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            await runner.RunAsync(WgQuickHookStage.PreUp, CancellationToken.None).WaitAsync(Bound);
            return await File.ReadAllTextAsync(trace);
        }
        finally
        {
            File.Delete(trace);
        }
    }

    private static string Probe(string stage, string trace) =>
        $"echo \"{stage} %i $(ip link show %i >/dev/null 2>&1 && echo exists || echo absent) $(ip -o -4 address show dev %i 2>/dev/null | grep -c 10.66.0.1)\" >> {trace}";

    /// <summary>A namespace, an interface name, its config file, log file and trace file; all removed on dispose.</summary>
    private sealed class HookLab : IAsyncDisposable
    {
        private HookLab(NetworkNamespace ns) => Namespace = ns;

        public NetworkNamespace Namespace { get; }

        public string Name { get; } = UapiServerFixture.UniqueName();

        public string File => Temp(".conf");

        public string Log => Path.Combine(Path.GetTempPath(), $"fzt-{Name}.log");

        public string Trace => Temp(".trace");

        /// <summary>A path in the temp directory named after the interface, removed on dispose.</summary>
        public string Temp(string suffix) => Path.Combine(Path.GetTempPath(), Name + suffix);

        public static async Task<HookLab> CreateAsync() => new(await NetworkNamespace.CreateAsync());

        /// <summary>A config with an address and the given hook lines (the first on line 4).</summary>
        public Task WriteConfigAsync(string hooks) =>
            System.IO.File.WriteAllTextAsync(File, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.66.0.1/24\n{hooks}");

        public DaemonProcess Start() => DaemonProcess.Start(Namespace, Name, "up", "--config", File);

        /// <summary>`up` run to its end (for starts that fail or stop by themselves).</summary>
        public Task<ProcessRunner.Result> RunUpAsync() =>
            Namespace.ExecAsync(DaemonProcess.Executable, ["up", "--config", File, "--log-file", Log], timeout: TimeSpan.FromSeconds(30));

        public async Task WaitForLogAsync(string text)
        {
            using var bound = new CancellationTokenSource(Bound);
            while (!System.IO.File.Exists(Log) || !(await System.IO.File.ReadAllTextAsync(Log, bound.Token)).Contains(text, StringComparison.Ordinal))
            {
                await Task.Delay(50, bound.Token);
            }
        }

        /// <summary>SIGTERM; the daemon must exit 0. Returns its log.</summary>
        public async Task<string> StopAsync(DaemonProcess daemon)
        {
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            return await System.IO.File.ReadAllTextAsync(Log);
        }

        /// <summary>No link of that name and no process (a hook's included) left in the namespace.</summary>
        public async Task AssertNothingLeftAsync()
        {
            Assert.False(await Namespace.HasLinkAsync(Name));
            Assert.Equal("", (await ProcessRunner.RunAsync("ip", ["netns", "pids", Namespace.Name])).Stdout);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (string path in (string[])[File, Log, Trace, Temp(".pid"), Temp(".preup")])
            {
                System.IO.File.Delete(path);
            }
            await Namespace.DisposeAsync();
        }
    }

    [Fact]
    public async Task Up_runs_each_hook_where_wg_quick_runs_it()
    {
        await using var lab = await HookLab.CreateAsync();
        await lab.WriteConfigAsync($"""
            PreUp = {Probe("preup", lab.Trace)}
            PostUp = {Probe("postup", lab.Trace)}; echo said-on-stdout; echo said-on-stderr >&2
            PreDown = {Probe("predown", lab.Trace)}
            PostDown = {Probe("postdown", lab.Trace)}
            """);
        await using var daemon = lab.Start();
        await lab.WaitForLogAsync($"running interface {lab.Name}");
        await lab.StopAsync(daemon);
        Assert.Equal(
        [
            $"preup {lab.Name} absent 0",
            $"postup {lab.Name} exists 1",
            $"predown {lab.Name} exists 1",
            $"postdown {lab.Name} absent 0",
        ], await File.ReadAllLinesAsync(lab.Trace));
        var lines = (await File.ReadAllLinesAsync(lab.Log)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Contains(lines, l => l.GetProperty("severity").GetString() == "Information"
            && l.GetProperty("message").GetString()!.StartsWith($"[#] echo \"postup {lab.Name} ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.GetProperty("severity").GetString() == "Information" && l.GetProperty("message").GetString() == "PostUp: said-on-stdout");
        Assert.Contains(lines, l => l.GetProperty("severity").GetString() == "Warning" && l.GetProperty("message").GetString() == "PostUp: said-on-stderr");
    }

    [Fact]
    public async Task A_failing_PostUp_fails_the_start_removes_the_interface_and_runs_no_down_hook()
    {
        await using var lab = await HookLab.CreateAsync();
        await lab.WriteConfigAsync($"""
            PostUp = {Probe("postup", lab.Trace)}; echo no-such-chain >&2; false; echo not-reached >> {lab.Trace}
            PreDown = {Probe("predown", lab.Trace)}
            PostDown = {Probe("postdown", lab.Trace)}
            """);
        var result = await lab.RunUpAsync();
        // EX_CONFIG: the unit does not start it again (as wg-quick@.service), which would run the
        // hooks again every 2.2 s with no down hook in between.
        Assert.Equal(78, result.ExitCode);
        Assert.Equal($"firezone-tunnel: {lab.File}:4: PostUp failed with exit code 1: no-such-chain\n", result.Stderr);
        Assert.Equal([$"postup {lab.Name} exists 1"], await File.ReadAllLinesAsync(lab.Trace));
        Assert.False(File.Exists(UapiSocketPath.For(lab.Name)));
        await lab.AssertNothingLeftAsync();
    }

    /// <summary>As wg-quick's set -o pipefail: a pipeline fails when any part does; a failing PreUp creates nothing.</summary>
    [Fact]
    public async Task A_PreUp_whose_pipeline_fails_creates_nothing()
    {
        await using var lab = await HookLab.CreateAsync();
        await lab.WriteConfigAsync("PreUp = false | true\n");
        var result = await lab.RunUpAsync();
        Assert.Equal(78, result.ExitCode);
        Assert.Equal($"firezone-tunnel: {lab.File}:4: PreUp failed with exit code 1\n", result.Stderr);
        Assert.False(File.Exists(UapiSocketPath.For(lab.Name)));
        await lab.AssertNothingLeftAsync();
    }

    /// <summary>
    /// `PostUp = watcher &amp;`: the job keeps the hook's output open; wg-quick does not wait for it
    /// and neither may the start (it hung until the job ended).
    /// </summary>
    [Fact]
    public async Task A_background_job_started_by_a_hook_does_not_hold_up_the_start()
    {
        await using var lab = await HookLab.CreateAsync();
        string pidFile = lab.Temp(".pid");
        await lab.WriteConfigAsync($"PostUp = sleep 60 & echo $! > {pidFile}; echo started\n");
        try
        {
            await using var daemon = lab.Start();
            await lab.WaitForLogAsync($"running interface {lab.Name}");
            Assert.Contains("PostUp: started", await lab.StopAsync(daemon));
        }
        finally
        {
            if (File.Exists(pidFile) && int.TryParse((await File.ReadAllTextAsync(pidFile)).Trim(), out int pid))
            {
                kill(pid, SIGKILL);
            }
        }
    }

    /// <summary>A PreDown that never ends is stopped after its limit; the interface still goes and PostDown, as in wg-quick after a failed PreDown, does not run.</summary>
    [Fact]
    public async Task A_PreDown_that_hangs_is_stopped_and_the_interface_still_goes()
    {
        await using var lab = await HookLab.CreateAsync();
        await lab.WriteConfigAsync("PreDown = sleep 60\nPostDown = echo post-down-ran\n");
        await using var daemon = lab.Start();
        await lab.WaitForLogAsync($"running interface {lab.Name}");
        string log = await lab.StopAsync(daemon);
        Assert.Contains("PreDown did not finish within 5 s: its hook was stopped", log);
        Assert.Contains("PostDown not run: a PreDown failed", log);
        Assert.DoesNotContain("post-down-ran", log);
        await lab.AssertNothingLeftAsync();
    }

    /// <summary>systemctl stop while a PreUp runs: the hook is stopped, nothing is left, and it is a stop (exit 0), not a failure.</summary>
    [Fact]
    public async Task A_stop_during_an_up_hook_stops_the_hook_and_exits_cleanly()
    {
        await using var lab = await HookLab.CreateAsync();
        await lab.WriteConfigAsync("PreUp = sleep 60\n");
        await using var daemon = lab.Start();
        await lab.WaitForLogAsync("[#] sleep 60");
        string log = await lab.StopAsync(daemon);
        Assert.Contains($"Interface {lab.Name} stopped while starting", log);
        Assert.DoesNotContain("Unexpected failure", log);
        Assert.Equal("", await daemon.Stderr);
        await lab.AssertNothingLeftAsync();
    }

    /// <summary>
    /// systemctl stop sends SIGTERM to the whole unit, the hook too, and the hook may end first
    /// (exit code 143): still a stop, not a failed start.
    /// </summary>
    [Fact]
    public async Task A_stop_that_reaches_the_hook_before_the_daemon_is_still_a_stop()
    {
        await using var lab = await HookLab.CreateAsync();
        await lab.WriteConfigAsync("PreUp = sleep 60\n");
        await using var daemon = lab.Start();
        await lab.WaitForLogAsync("[#] sleep 60");
        // The line is logged before the shell is started: under load (a clean-clone CI run,
        // 2026-11-27) the namespace held only the daemon when it was first listed; and the shell
        // forks `sleep` after it starts (a clean-clone CI run, 2026-11-28: the shell alone was
        // listed and killed, its `sleep` was left in the namespace). So wait for the `sleep`, and
        // signal the shell and it, as a stop under systemd signals every process of the unit.
        List<int> hooks = [];
        for (var waited = System.Diagnostics.Stopwatch.StartNew(); !hooks.Any(IsSleep) && waited.Elapsed < TimeSpan.FromSeconds(10);)
        {
            hooks = (await ProcessRunner.RunAsync("ip", ["netns", "pids", lab.Namespace.Name])).Stdout
                .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).Where(p => p != daemon.Pid).ToList();
            if (!hooks.Any(IsSleep))
            {
                await Task.Delay(50);
            }
        }
        Assert.Contains(hooks, IsSleep);
        foreach (int pid in hooks)
        {
            kill(pid, SIGTERM);
        }
        Assert.Contains($"Interface {lab.Name} stopped while starting", await lab.StopAsync(daemon));
        Assert.Equal("", await daemon.Stderr);
        await lab.AssertNothingLeftAsync();

        static bool IsSleep(int pid)
        {
            try
            {
                return System.IO.File.ReadAllText($"/proc/{pid}/comm").Trim() == "sleep";
            }
            catch (IOException)
            {
                return false; // it has exited
            }
        }
    }

    /// <summary>
    /// The interface deleted while a PostUp runs is a stop, as deleting it is at any other time
    /// (wg-quick down's way with a userspace daemon): exit 0 with the reason, the hook stopped.
    /// </summary>
    [Fact]
    public async Task The_interface_deleted_during_PostUp_stops_the_start_cleanly()
    {
        await using var lab = await HookLab.CreateAsync();
        await lab.WriteConfigAsync("PostUp = ip link del %i; sleep 10\n");
        var result = await lab.RunUpAsync();
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.Stderr);
        string log = await File.ReadAllTextAsync(lab.Log);
        Assert.Contains($"Interface {lab.Name} stopped while starting: ", log);
        Assert.DoesNotContain("A task was canceled", log);
        await lab.AssertNothingLeftAsync();
    }

    /// <summary>As wg-quick up ("`wg0' already exists"): a name a link already has stops the start before PreUp runs.</summary>
    [Fact]
    public async Task An_interface_name_that_exists_stops_the_start_before_PreUp()
    {
        await using var lab = await HookLab.CreateAsync();
        string marker = lab.Temp(".preup");
        await lab.WriteConfigAsync($"PreUp = touch {marker}\n");
        Assert.Equal(0, (await lab.Namespace.ExecAsync("ip", ["link", "add", lab.Name, "type", "veth", "peer", "name", lab.Name + "p"])).ExitCode);
        var result = await lab.RunUpAsync();
        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"firezone-tunnel: {lab.Name} already exists: no PreUp run (wg-quick up stops there too)\n", result.Stderr);
        Assert.False(File.Exists(marker));
        Assert.True(await lab.Namespace.HasLinkAsync(lab.Name)); // the other link is left alone
        // Nothing of this start ran: the log file it created is removed, as without a PreUp
        // (the kernel's refusal of the TUN device's name); it was left with that one line.
        Assert.False(File.Exists(lab.Log));
    }

    /// <summary>
    /// wg-quick evals a hook in its own shell, so the hook's text is in no process's arguments; run as
    /// <c>bash -c HOOK</c> it was in that shell's /proc/PID/cmdline, which every local user reads (ps)
    /// for as long as the hook runs: a hook that carries a key (<c>wg set %i peer K preshared-key
    /// &lt;(echo PSK)</c>) showed it. The text now reaches the shell in its environment, which only
    /// root reads. Found in the security review.
    /// </summary>
    [Fact]
    public async Task A_hooks_text_is_not_in_the_arguments_of_the_shell_that_runs_it()
    {
        await using var lab = await HookLab.CreateAsync();
        await lab.WriteConfigAsync($"PostUp = tr '\\0' ' ' < /proc/$$/cmdline > {lab.Trace}; echo secret-{lab.Name} > /dev/null\n");
        await using var daemon = lab.Start();
        await lab.WaitForLogAsync($"running interface {lab.Name}");
        await lab.StopAsync(daemon);
        string arguments = await File.ReadAllTextAsync(lab.Trace);
        Assert.StartsWith(Network.WgQuickHookRunner.Shell, arguments, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-", arguments, StringComparison.Ordinal);
        await lab.AssertNothingLeftAsync();
    }

    /// <summary>
    /// wg-quick gives the hooks <c>$CONFIG_FILE</c> as <c>readlink -f</c> makes it: absolute, with a
    /// symbolic link followed to its file. The daemon passed the path as given, so `up ./wg0.conf`
    /// gave a hook a relative path (wrong once the hook changes directory) and a link's path where
    /// wg-quick gives its target.
    /// </summary>
    [Fact]
    public async Task A_hooks_CONFIG_FILE_is_the_files_real_path_as_wg_quick_gives_it()
    {
        await using var lab = await HookLab.CreateAsync();
        string real = lab.Temp(".real");
        try
        {
            await lab.WriteConfigAsync($"PostUp = echo \"$CONFIG_FILE\" > {lab.Trace}\n");
            File.Move(lab.File, real);
            File.CreateSymbolicLink(lab.File, Path.GetFileName(real));
            string relative = Path.GetRelativePath(Environment.CurrentDirectory, lab.File);
            Assert.False(Path.IsPathRooted(relative));
            await using var daemon = DaemonProcess.Start(lab.Namespace, lab.Name, "up", relative);
            await lab.WaitForLogAsync($"running interface {lab.Name}");
            await lab.StopAsync(daemon);
            var readlink = await ProcessRunner.RunAsync("readlink", ["-f", lab.File], timeout: TimeSpan.FromSeconds(10));
            Assert.Equal(readlink.Stdout, await File.ReadAllTextAsync(lab.Trace));
            Assert.Equal(real + "\n", readlink.Stdout);
            await lab.AssertNothingLeftAsync();
        }
        finally
        {
            File.Delete(real);
        }
    }

    [Fact]
    public async Task A_hooks_CONFIG_FILE_follows_a_linked_directory_as_readlink_f_does()
    {
        await using var lab = await HookLab.CreateAsync();
        string realDirectory = lab.Temp(".dir");
        string linkedDirectory = lab.Temp(".linked");
        try
        {
            await lab.WriteConfigAsync($"PostUp = echo \"$CONFIG_FILE\" > {lab.Trace}\n");
            Directory.CreateDirectory(realDirectory);
            string real = Path.Combine(realDirectory, Path.GetFileName(lab.File));
            File.Move(lab.File, real);
            Directory.CreateSymbolicLink(linkedDirectory, realDirectory);
            string viaLink = Path.Combine(linkedDirectory, "..", Path.GetFileName(linkedDirectory), Path.GetFileName(real));
            await using var daemon = DaemonProcess.Start(lab.Namespace, lab.Name, "up", viaLink);
            await lab.WaitForLogAsync($"running interface {lab.Name}");
            await lab.StopAsync(daemon);
            var readlink = await ProcessRunner.RunAsync("readlink", ["-f", viaLink], timeout: TimeSpan.FromSeconds(10));
            Assert.Equal(real + "\n", readlink.Stdout);
            Assert.Equal(readlink.Stdout, await File.ReadAllTextAsync(lab.Trace));
            await lab.AssertNothingLeftAsync();
        }
        finally
        {
            File.Delete(linkedDirectory);
            if (Directory.Exists(realDirectory))
            {
                Directory.Delete(realDirectory, recursive: true);
            }
        }
    }

    /// <summary>
    /// wg-quick(8) suggests keeping the private key out of the file, <c>PostUp = wg set %i
    /// private-key &lt;(pass WireGuard/private-keys/%i)</c>: wg setconf of a file without PrivateKey
    /// leaves the interface without a key, and the hook gives it one. Service mode refused such a
    /// file ("[Interface] has no PrivateKey", exit code 78), so a file that wg-quick brings up
    /// did not start (found trying the man page's example as an operator would).
    /// </summary>
    [Fact]
    public async Task A_file_without_PrivateKey_starts_and_a_PostUp_can_give_the_key_as_wg_quick_8_suggests()
    {
        await using var lab = await HookLab.CreateAsync();
        var key = TestKeys.New();
        var peer = Firezone.Actors.Engine.Crypto.Curve25519.PublicKeyOf(TestKeys.New());
        string keyFile = lab.Temp(".key");
        try
        {
            await File.WriteAllTextAsync(keyFile, key.ToBase64() + "\n");
            await File.WriteAllTextAsync(lab.File,
                $"[Interface]\nAddress = 10.66.0.1/24\nPostUp = wg set %i private-key {keyFile}\n\n[Peer]\nPublicKey = {peer.ToBase64()}\nAllowedIPs = 10.67.0.0/16\n");
            await using var daemon = lab.Start();
            await lab.WaitForLogAsync($"running interface {lab.Name}");
            var show = await lab.Namespace.ExecAsync("wg", ["show", lab.Name, "dump"], timeout: TimeSpan.FromSeconds(10));
            string[] lines = show.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(key.ToBase64(), lines[0].Split('\t')[0]);
            Assert.Equal(peer.ToBase64(), Assert.Single(lines[1..]).Split('\t')[0]);
            Assert.Contains("10.67.0.0/16", (await lab.Namespace.ExecAsync("ip", ["route", "show", "dev", lab.Name])).Stdout, StringComparison.Ordinal);
            await lab.StopAsync(daemon);
            await lab.AssertNothingLeftAsync();
        }
        finally
        {
            File.Delete(keyFile);
        }
    }
}
