using System.Diagnostics;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Native;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>
/// Runs the file's PreUp, PostUp, PreDown and PostDown lines as wg-quick runs them
/// (execute_hooks: <c>%i</c> replaced by the interface's name, each line in a bash of its own with
/// <c>set -e -o pipefail</c>, one after the other in the file's order; <c>$INTERFACE</c> and
/// <c>$CONFIG_FILE</c> set, as the hook's eval sees them in wg-quick). wg-quick prints
/// <c>[#] COMMAND</c> before each; here that is an Information line, and every line the command
/// writes is logged too (stdout at Information, stderr at Warning), so the journal and the log file
/// show what ran and what it said. Up hooks have no time limit, as in wg-quick (under systemd the
/// unit's TimeoutStartSec bounds them, and a stop cancels them); down hooks get
/// <see cref="DownHookLimit"/>, so the daemon still removes its routes and rules before systemd's
/// TimeoutStopSec (20 s in the sample unit) kills it.
/// </summary>
public sealed class WgQuickHookRunner(string interfaceName, string configPath, IReadOnlyList<WgQuickHook> hooks, ILogger logger)
{
    public const string Shell = "/bin/bash";

    /// <summary>Carries the hook's text to the shell; unset before the hook runs, so its commands do not inherit it.</summary>
    private const string HookVariable = "FIREZONE_HOOK";

    /// <summary>The shell's script: take the hook from <see cref="HookVariable"/> and eval it (wg-quick: <c>(eval "$hook")</c>).</summary>
    private const string EvalHook = "hook=$" + HookVariable + "; unset " + HookVariable + "; eval \"$hook\"";

    private const string Env = "/usr/bin/env";

    /// <summary>
    /// Whether <see cref="Env"/> takes <c>--default-signal=PIPE</c> (coreutils 8.31 or later; asked
    /// once, with <c>true</c>); without it hooks start with SIGPIPE ignored, as before.
    /// </summary>
    private static readonly Lazy<bool> EnvResetsSigpipe = new(static () =>
    {
        try
        {
            using var probe = Process.Start(new ProcessStartInfo(Env, ["--default-signal=PIPE", "true"])
            {
                UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true,
            })!;
            probe.StandardOutput.ReadToEnd();
            probe.StandardError.ReadToEnd();
            return probe.WaitForExit(5000) && probe.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no /usr/bin/env
        }
    });

    /// <summary>How long a down stage (all its lines) may take before its hook is killed.</summary>
    public static readonly TimeSpan DownHookLimit = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long output is still awaited after the shell exits: long enough for the readers to log
    /// the last lines (the failure message quotes the last stderr line) on a busy machine. A hook
    /// that starts a background job (<c>PostUp = watcher &amp;</c>) leaves it holding the output
    /// pipes; wg-quick does not wait for it, and the start waits only this long. Its later lines are
    /// still logged.
    /// </summary>
    private static readonly TimeSpan OutputGrace = TimeSpan.FromSeconds(1);

    /// <summary>How long a hook killed by a signal waits for the daemon's own stop before it counts as failed.</summary>
    private static readonly TimeSpan SignalGrace = TimeSpan.FromMilliseconds(500);

    private bool _preDownFailed;

    /// <summary>
    /// <c>$CONFIG_FILE</c> as wg-quick sets it (<c>readlink -f</c>): absolute, a symbolic link
    /// followed to its file, so a hook that changes directory still finds it. Taken at the start, as
    /// wg-quick takes it when it reads the file. Messages keep the path as the user gave it. A link
    /// to no file (<c>up /dev/stdin</c>: a pipe's "pipe:[N]") stays as given, made absolute. Links in
    /// the directories count too (realpath(3), <see cref="CanonicalPath"/>).
    /// </summary>
    private readonly string _configFileForHooks = CanonicalPath.TryResolve(configPath) ?? Path.GetFullPath(configPath);

    public string InterfaceName => interfaceName;

    /// <summary>True once a PreDown failed or was stopped: wg-quick down stops there, before SaveConfig and PostDown.</summary>
    public bool PreDownFailed => _preDownFailed;

    /// <summary>Whether a link with the interface's name exists in this network namespace.</summary>
    public bool InterfaceExists() =>
        System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces().Any(n => n.Name == interfaceName);

    /// <summary>
    /// Runs the stage's hooks; the first that fails ends the stage with <see cref="StartupException"/>
    /// naming its line. As wg-quick down stops at a failing PreDown, PostDown is then skipped.
    /// </summary>
    public async Task RunAsync(WgQuickHookStage stage, CancellationToken cancellationToken)
    {
        if (stage == WgQuickHookStage.PostDown && _preDownFailed)
        {
            if (hooks.Any(h => h.Stage == stage))
            {
                logger.LogWarning("PostDown not run: a PreDown failed (wg-quick down stops there too)");
            }
            return;
        }
        try
        {
            foreach (var hook in hooks)
            {
                if (hook.Stage == stage)
                {
                    await RunOneAsync(hook, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (stage == WgQuickHookStage.PreDown && e is StartupException or OperationCanceledException)
        {
            _preDownFailed = true;
            throw;
        }
    }

    private async Task RunOneAsync(WgQuickHook hook, CancellationToken cancellationToken)
    {
        string command = hook.Command.Replace("%i", interfaceName, StringComparison.Ordinal);
        logger.LogInformation("[#] {Command} ({Stage} on line {ConfigLine})", command, hook.Stage, hook.Line);
        // .NET ignores SIGPIPE, and an ignored signal stays ignored across exec, where bash cannot
        // reset it: under wg-quick `seq 1 1000000 | head -1` ends quietly, here seq wrote "Broken
        // pipe" and ran to its end, and a daemon a hook starts kept SIGPIPE ignored for its life.
        // env(1) of coreutils 8.31 or later starts the shell with it at its default again.
        bool resetPipe = EnvResetsSigpipe.Value;
        var start = new ProcessStartInfo(resetPipe ? Env : Shell)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // Nothing to read: the daemon's own stdin is not the hook's to take.
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        // The hook's text goes to the shell in its environment (/proc/PID/environ: root only), not
        // as its argument (/proc/PID/cmdline: every local user, ps), and is eval'd there as wg-quick
        // evals it: a hook may carry a key (`wg set %i peer K preshared-key <(echo PSK)`).
        if (resetPipe)
        {
            start.ArgumentList.Add("--default-signal=PIPE");
            start.ArgumentList.Add(Shell);
        }
        foreach (string argument in (string[])["-e", "-o", "pipefail", "-c", EvalHook])
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment[HookVariable] = command;
        start.Environment["INTERFACE"] = interfaceName;
        start.Environment["CONFIG_FILE"] = _configFileForHooks;
        // wg-quick exports LC_ALL=C before it evals a hook: numbers, sorting and character classes
        // in the hook's commands read as they do there, whatever the daemon's locale (systemd's LANG).
        start.Environment["LC_ALL"] = "C";
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new StartupException($"{configPath}:{hook.Line}: {hook.Stage}: cannot run {Shell}: {e.Message}", e) { HookFailed = true };
        }
        process.StandardInput.Close();
        string? lastError = null;
        var output = Task.WhenAll(
            LogLinesAsync(process.StandardOutput, hook, isError: false, _ => { }),
            LogLinesAsync(process.StandardError, hook, isError: true, line => lastError = line));
        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            _ = output.ContinueWith(_ => process.Dispose(), TaskScheduler.Default);
            throw;
        }
        await Task.WhenAny(output, Task.Delay(OutputGrace, CancellationToken.None)).ConfigureAwait(false);
        int exitCode = process.ExitCode;
        // The readers end when the last holder of the pipes (a background job, maybe) closes them.
        _ = output.ContinueWith(_ => process.Dispose(), TaskScheduler.Default);
        if (exitCode > 128 && !cancellationToken.IsCancellationRequested)
        {
            // Killed by a signal: under systemd a stop sends SIGTERM to the whole unit, the hook as
            // well as the daemon, and the hook may end before the daemon has seen its own. Give the
            // stop a moment to arrive, so it is reported as a stop and not as a failed hook.
            await Task.Delay(SignalGrace, cancellationToken).ConfigureAwait(false);
        }
        if (exitCode != 0)
        {
            throw new StartupException($"{configPath}:{hook.Line}: {hook.Stage} failed with exit code {exitCode}{(lastError is null ? "" : ": " + lastError)}") { HookFailed = true };
        }
    }

    private async Task LogLinesAsync(StreamReader reader, WgQuickHook hook, bool isError, Action<string> seen)
    {
        while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }
            seen(line);
            logger.Log(isError ? LogLevel.Warning : LogLevel.Information, "{Stage}: {Output}", hook.Stage, line);
        }
    }
}
