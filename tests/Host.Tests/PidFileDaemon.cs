using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A foreground daemon started through a shell that wrote its PID to a file (`echo $$ > FILE &amp;&amp;
/// exec firezone-tunnel -f NAME`, so the PID is the daemon's): waits until it serves its socket,
/// stops it with SIGTERM by that PID (SIGKILL if it does not stop within 10 s, so the test fails on
/// what it printed rather than on a bare timeout), and returns what the run printed.
/// </summary>
internal static class PidFileDaemon
{
    public static async Task<ProcessRunner.Result> StopOnceServingAsync(Task<ProcessRunner.Result> run, string name, string pidFile)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!(File.Exists(UapiSocketPath.For(name)) && File.Exists(pidFile) && (await File.ReadAllTextAsync(pidFile)).EndsWith('\n')) && !run.IsCompleted && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        if (!run.IsCompleted && File.Exists(pidFile))
        {
            int pid = int.Parse(await File.ReadAllTextAsync(pidFile));
            Tmds.Linux.LibC.kill(pid, 15);
            if (await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(10))) != run)
            {
                Tmds.Linux.LibC.kill(pid, 9);
            }
        }
        return await run;
    }
}
