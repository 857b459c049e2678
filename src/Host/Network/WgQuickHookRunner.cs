using System.Diagnostics;
using Firezone.Actors.Host.Config;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>
/// Runs the file's PreUp, PostUp, PreDown and PostDown lines as wg-quick runs them
/// (execute_hooks: <c>%i</c> replaced by the interface's name, each line in a bash of its own with
/// <c>set -e -o pipefail</c>, one after the other in the file's order). wg-quick prints
/// <c>[#] COMMAND</c> before each; here that is an Information line, and every line the command
/// writes is logged too (stdout at Information, stderr at Warning), so the journal and the log file
/// show what ran and what it said. No time limit, as in wg-quick: under systemd, the unit's
/// TimeoutStartSec and TimeoutStopSec bound a hook that hangs.
/// </summary>
public sealed class WgQuickHookRunner(string interfaceName, string configPath, IReadOnlyList<WgQuickHook> hooks, ILogger logger)
{
    public const string Shell = "/bin/bash";

    /// <summary>Runs the stage's hooks; the first that fails ends the stage with <see cref="StartupException"/> naming its line.</summary>
    public async Task RunAsync(WgQuickHookStage stage, CancellationToken cancellationToken)
    {
        foreach (var hook in hooks)
        {
            if (hook.Stage == stage)
            {
                await RunOneAsync(hook, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task RunOneAsync(WgQuickHook hook, CancellationToken cancellationToken)
    {
        string command = hook.Command.Replace("%i", interfaceName, StringComparison.Ordinal);
        logger.LogInformation("[#] {Command} ({Stage} on line {ConfigLine})", command, hook.Stage, hook.Line);
        var start = new ProcessStartInfo(Shell)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // Nothing to read: the daemon's own stdin is not the hook's to take.
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string argument in (string[])["-e", "-o", "pipefail", "-c", command])
        {
            start.ArgumentList.Add(argument);
        }
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new StartupException($"{configPath}:{hook.Line}: {hook.Stage}: cannot run {Shell}: {e.Message}", e);
        }
        using (process)
        {
            process.StandardInput.Close();
            string? lastError = null;
            var stdout = LogLinesAsync(process.StandardOutput, hook, isError: false, _ => { });
            var stderr = LogLinesAsync(process.StandardError, hook, isError: true, line => lastError = line);
            try
            {
                await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
            await Task.WhenAll(stdout, stderr).ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new StartupException($"{configPath}:{hook.Line}: {hook.Stage} failed with exit code {process.ExitCode}{(lastError is null ? "" : ": " + lastError)}");
            }
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
