using System.Diagnostics;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Makes one system call fail in every thread of a process (and the threads it starts) with the
/// errno given, until disposed: strace's fault injection, a stand-in for a process out of
/// descriptors (EMFILE), which `prlimit --nofile` cannot make without the .NET runtime failing
/// first. A thread that already has a tracer (<see cref="ThreadHold"/>) is left as it is. Needs
/// strace (ptrace).
/// </summary>
internal sealed class SyscallFailure : IAsyncDisposable
{
    private readonly Process _strace;

    private SyscallFailure(Process strace) => _strace = strace;

    /// <param name="firstOnly">Only each thread's first such call fails (strace counts per thread): a retry on the same thread succeeds.</param>
    public static async Task<SyscallFailure> StartAsync(int pid, string syscall, string errno, bool firstOnly = false)
    {
        var strace = Process.Start(new ProcessStartInfo("strace", ["-q", "-f", "-o", "/dev/null", "-p", pid.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-e", $"trace={syscall}", "-e", $"inject={syscall}:error={errno}" + (firstOnly ? ":when=1" : "")])
        {
            RedirectStandardInput = true, RedirectStandardError = true,
        })!;
        // Attached once every thread has a tracer (this one, or a hold's) and the main thread this one.
        for (var waited = Stopwatch.StartNew(); waited.Elapsed < TimeSpan.FromSeconds(10); await Task.Delay(20))
        {
            if ((await File.ReadAllTextAsync($"/proc/{pid}/status")).Contains($"TracerPid:\t{strace.Id}\n", StringComparison.Ordinal)
                && await AllTracedAsync(pid))
            {
                return new SyscallFailure(strace);
            }
        }
        strace.Kill();
        Assert.Fail("strace did not attach: " + await strace.StandardError.ReadToEndAsync());
        return null!;
    }

    private static async Task<bool> AllTracedAsync(int pid)
    {
        foreach (string task in Directory.GetDirectories($"/proc/{pid}/task"))
        {
            try
            {
                if ((await File.ReadAllTextAsync(Path.Combine(task, "status"))).Contains("TracerPid:\t0\n", StringComparison.Ordinal))
                {
                    return false;
                }
            }
            catch (IOException)
            {
                // The thread ended meanwhile.
            }
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_strace.HasExited)
        {
            _strace.Kill(); // SIGKILL: the kernel detaches it and the calls succeed again
        }
        await _strace.WaitForExitAsync();
        _strace.Dispose();
    }
}
