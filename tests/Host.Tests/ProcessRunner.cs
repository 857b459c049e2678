using System.Diagnostics;

namespace Firezone.Actors.Host.Tests;

/// <summary>Runs a tool with a time bound and kills it (by its own PID) if it overruns.</summary>
internal static class ProcessRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static async Task<Result> RunAsync(string file, IEnumerable<string> arguments, string? stdin = null,
        IDictionary<string, string>? environment = null, TimeSpan? timeout = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory ?? "",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                start.Environment[key] = value;
            }
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(cts.Token);
            // A grandchild that inherited the pipes (an MSBuild node left for reuse, a daemon) keeps
            // them open after the process exits: the reads are bounded too.
            await Task.WhenAll(stdout, stderr).WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            string what = process.HasExited ? "left its output open (a child still holds it)" : "did not finish in time";
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
            throw new TimeoutException($"{file} {string.Join(' ', start.ArgumentList)} {what}");
        }
        return new Result(process.ExitCode, await stdout, await stderr);
    }

    public static async Task<Result> WgAsync(params string[] arguments) => await RunAsync("wg", arguments, timeout: TimeSpan.FromSeconds(15));
}
