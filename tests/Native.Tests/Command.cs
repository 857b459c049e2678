using System.Diagnostics;

namespace Firezone.Actors.Native.Tests;

/// <summary>Runs ip(8), ping and friends with a time bound; a process that overruns is killed by its PID.</summary>
internal static class Command
{
    public static (int ExitCode, string Output) Run(string file, params string[] arguments) => Run(TimeSpan.FromSeconds(20), file, arguments);

    public static (int ExitCode, string Output) Run(TimeSpan timeout, string file, params string[] arguments)
    {
        using Process process = Start(file, arguments);
        return Finish(process, timeout);
    }

    public static Process Start(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        return Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
    }

    /// <summary>Waits for exit within <paramref name="timeout"/>; kills the process (by PID) if it overruns.</summary>
    public static (int ExitCode, string Output) Finish(Process process, TimeSpan timeout)
    {
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"{process.StartInfo.FileName} {string.Join(' ', process.StartInfo.ArgumentList)} did not finish within {timeout}");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>Runs a command that must succeed.</summary>
    public static string Check(string file, params string[] arguments)
    {
        var (exitCode, output) = Run(file, arguments);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} exited with {exitCode}: {output}");
        }
        return output;
    }
}
