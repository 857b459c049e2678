using System.Diagnostics;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Holds a thread of a process (one whose name starts with the name given) at the return of each
/// poll it makes, and of the poll it waits in now, for the time given: strace's delay injection, a
/// stand-in for a thread the scheduler does not run or that is stuck in the kernel. Needs strace
/// (ptrace). The hold ends when this is disposed (strace is killed, the thread runs on).
/// </summary>
internal sealed class ThreadHold : IAsyncDisposable
{
    private readonly Process _strace;

    private ThreadHold(Process strace) => _strace = strace;

    public static async Task<ThreadHold> StartAsync(int pid, string threadName, TimeSpan hold)
    {
        // A tunnel (re)started by a link change or a set has its reader threads a moment after the
        // command that started it returned: wait for the thread (CI once looked too early).
        string? tid = null;
        for (var looked = Stopwatch.StartNew(); tid is null && looked.Elapsed < TimeSpan.FromSeconds(10); await Task.Delay(tid is null ? 20 : 0))
        {
            foreach (string task in Directory.GetDirectories($"/proc/{pid}/task"))
            {
                try
                {
                    if ((await File.ReadAllTextAsync(Path.Combine(task, "comm"))).StartsWith(threadName, StringComparison.Ordinal))
                    {
                        tid = Path.GetFileName(task);
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // A thread that ended while we looked.
                }
            }
        }
        Assert.True(tid is not null, $"no thread {threadName} in process {pid}");
        long microseconds = (long)hold.TotalMicroseconds;
        var strace = Process.Start(new ProcessStartInfo("strace", ["-q", "-o", "/dev/null", "-p", tid,
            "-e", "trace=poll,restart_syscall", "-e", $"inject=poll,restart_syscall:delay_exit={microseconds}"])
        {
            RedirectStandardInput = true, RedirectStandardError = true,
        })!;
        // Attached once the thread has a tracer.
        for (var waited = Stopwatch.StartNew(); waited.Elapsed < TimeSpan.FromSeconds(10); await Task.Delay(20))
        {
            string status = await File.ReadAllTextAsync($"/proc/{pid}/task/{tid}/status");
            if (!status.Contains("TracerPid:\t0\n", StringComparison.Ordinal))
            {
                return new ThreadHold(strace);
            }
        }
        strace.Kill();
        Assert.Fail("strace did not attach: " + await strace.StandardError.ReadToEndAsync());
        return null!;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_strace.HasExited)
        {
            _strace.Kill(); // SIGKILL: the kernel detaches it and the thread runs on
        }
        await _strace.WaitForExitAsync();
        _strace.Dispose();
    }
}
