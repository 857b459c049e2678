using System.Diagnostics;
using System.Reflection;
using Firezone.Actors.Host.Logging;

namespace Firezone.Actors.Host.Daemon;

/// <summary>
/// The parent side of detaching, wireguard-go style: start the daemon again as a child with
/// <c>--foreground</c> (a .NET process cannot fork safely, so it re-executes itself), wait until the
/// child says it is ready, and exit 0; if the child fails first, print its error line and exit 1.
/// </summary>
public static class Detacher
{
    public static int Run(IReadOnlyList<string> arguments)
    {
        string processPath = Environment.ProcessPath ?? throw new StartupException("cannot find the executable to detach");
        var start = new ProcessStartInfo(processPath)
        {
            UseShellExecute = false,
            // All three redirected, so the daemon holds none of our caller's descriptors: a caller
            // that reads our output to its end (wg-quick, a test, a shell's $(...)) must see it end
            // when we exit, not when the daemon does. (.NET's Console keeps dup()s of fds 0-2, so
            // the child pointing them at /dev/null later would not be enough.)
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // Under `dotnet firezone-tunnel.dll` the process is the dotnet host; pass the assembly again.
        if (Path.GetFileNameWithoutExtension(processPath) == "dotnet")
        {
            start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        }
        start.ArgumentList.Add("--foreground");
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment[DetachedChild.EnvironmentVariable] = "1";

        using var child = Process.Start(start) ?? throw new StartupException("cannot start the daemon process");
        child.StandardInput.Close();
        // Anything the daemon writes to stderr before it is ready (a runtime failure) is passed on.
        child.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine(e.Data);
            }
        };
        child.BeginErrorReadLine();
        string? line;
        while ((line = child.StandardOutput.ReadLine()) is not null)
        {
            if (line == DetachedChild.ReadyLine)
            {
                return 0;
            }
            if (line.StartsWith(DetachedChild.WarningPrefix, StringComparison.Ordinal))
            {
                Console.Error.WriteLine(JournalErrorWriter.NoticeLine("firezone-tunnel: " + line[DetachedChild.WarningPrefix.Length..]));
                continue;
            }
            if (line.StartsWith(DetachedChild.ErrorPrefix, StringComparison.Ordinal))
            {
                Console.Error.WriteLine("firezone-tunnel: " + line[DetachedChild.ErrorPrefix.Length..]);
                child.WaitForExit(2000);
                return 1;
            }
        }
        child.WaitForExit(2000);
        Console.Error.WriteLine(child.HasExited
            ? $"firezone-tunnel: the daemon exited with code {child.ExitCode} before it was ready"
            : "firezone-tunnel: the daemon closed its output before it was ready");
        return 1;
    }
}
