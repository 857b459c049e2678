using System.Diagnostics;

namespace Firezone.Actors.EndToEnd.Tests.Harness;

/// <summary>The outcome of one finished command.</summary>
public sealed record ProcessResult(string Command, int ExitCode, string StandardOutput, string StandardError)
{
    public bool Succeeded => ExitCode == 0;
}

/// <summary>
/// Runs one command to completion with a time limit; on expiry kills the process (by the PID this
/// runner started) and throws, so a hung tool cannot hang a test.
/// </summary>
public static class ProcessRunner
{
    public static ProcessResult Run(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }
        }
        var command = fileName + " " + string.Join(' ', arguments);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start: {command}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It exited between the wait and the kill.
            }
            process.WaitForExit();
            throw new TimeoutException($"{command}: no exit within {timeout.TotalSeconds:0.#} s; stderr: {Tail(stderr)}");
        }
        process.WaitForExit();
        return new ProcessResult(command, process.ExitCode, stdout.Result, stderr.Result);
    }

    private static string Tail(Task<string> text) =>
        text.IsCompletedSuccessfully ? text.Result[Math.Max(0, text.Result.Length - 500)..] : "(unread)";
}
