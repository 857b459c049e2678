using Microsoft.Win32.SafeHandles;
using Tmds.Linux;

namespace Firezone.Actors.Host.Daemon;

/// <summary>
/// The daemon side of detaching: started by <see cref="Detacher"/> with stdout a pipe to the
/// parent. It leaves the parent's session (setsid(2), so the terminal's hangup does not reach it),
/// reports readiness as one line on that pipe, then points stdin, stdout and stderr at /dev/null,
/// which closes the pipe and lets the parent exit.
/// </summary>
public sealed class DetachedChild : IReadinessSignal
{
    /// <summary>Set by the parent in the child's environment.</summary>
    public const string EnvironmentVariable = "FIREZONE_TUNNEL_DETACHED_CHILD";

    public const string ReadyLine = "firezone-tunnel: ready";
    public const string ErrorPrefix = "firezone-tunnel: error: ";
    public const string WarningPrefix = "firezone-tunnel: warning: ";

    private int _signalled;

    public static bool IsDetachedChild => Environment.GetEnvironmentVariable(EnvironmentVariable) == "1";

    public DetachedChild()
    {
        // Fails only if we already lead a process group, which a freshly started child does not.
        _ = LibC.setsid();
    }

    public void Ready() => Signal(ReadyLine);

    public void Failed(string problem) => Signal(ErrorPrefix + problem);

    /// <summary>
    /// On the pipe, not stderr: the parent reads stdout line by line up to the ready line, so a
    /// warning before it reaches the caller before the parent exits (stderr is relayed on another
    /// thread and could be cut off).
    /// </summary>
    public void Warning(string problem)
    {
        if (Volatile.Read(ref _signalled) == 0)
        {
            Console.Out.Write(WarningPrefix + problem + "\n");
            Console.Out.Flush();
        }
    }

    private void Signal(string line)
    {
        if (Interlocked.Exchange(ref _signalled, 1) != 0)
        {
            return;
        }
        Console.Out.Write(line + "\n");
        Console.Out.Flush();
        using SafeFileHandle devNull = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.ReadWrite);
        int fd = (int)devNull.DangerousGetHandle();
        for (int target = 0; target <= 2; target++)
        {
            _ = LibC.dup2(fd, target);
        }
    }
}
