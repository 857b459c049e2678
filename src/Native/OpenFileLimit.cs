using Firezone.Actors.Native.Interop;

namespace Firezone.Actors.Native;

/// <summary>
/// The process's open-file limit (RLIMIT_NOFILE) and how many descriptors it has open. The .NET
/// runtime raises the soft limit to the hard one as it starts, so a low hard limit (systemd's
/// <c>LimitNOFILE=</c>, <c>ulimit -n</c>, <c>docker run --ulimit nofile=</c>) is what the daemon
/// lives with; and the runtime keeps some 200 descriptors open for its own assemblies, where
/// wireguard-go needs about ten.
/// </summary>
public static class OpenFileLimit
{
    /// <summary>
    /// The least limit firezone-tunnel starts under: the runtime's ~200 descriptors and the daemon's
    /// own (TUN device, socket, eventfds, epoll, netlink, log, UAPI connections) with room to spare.
    /// Below it the process failed partway, wherever the runtime next needed a descriptor: an
    /// "Unhandled exception" stack trace and SIGABRT (exit 134), at 224 (205 in use) an abort at
    /// the first few UAPI connections.
    /// </summary>
    public const long Minimum = 256;

    /// <summary>
    /// The least limit a command that starts no daemon runs under (--version, --help, show, save,
    /// up --check): they load far fewer assemblies (measured: --version from 51 descriptors, --help
    /// 55, up --check 65, save 69, show of a running daemon 70).
    /// </summary>
    public const long CommandMinimum = 128;

    /// <summary>
    /// <see cref="CommandMinimum"/> when <paramref name="args"/> start no daemon (a first word show or
    /// save; --version, --help, -h, -? or --check anywhere), else <see cref="Minimum"/>. No LINQ:
    /// called before any assembly beyond the core library is loaded.
    /// </summary>
    public static long MinimumFor(string[] args)
    {
        if (args is ["show" or "save", ..])
        {
            return CommandMinimum;
        }
        foreach (string arg in args)
        {
            if (arg is "--version" or "--help" or "-h" or "-?" or "--check")
            {
                return CommandMinimum;
            }
        }
        return Minimum;
    }

    /// <summary>The line for a limit below <paramref name="minimum"/>, said before anything else is loaded.</summary>
    public static string TooLow(long limit, long minimum = Minimum) =>
        $"firezone-tunnel: the open-file limit (RLIMIT_NOFILE) is {limit}, too low: it needs at least {minimum} "
        + "(the .NET runtime keeps its assemblies open: some 200 descriptors in a daemon); raise it: LimitNOFILE= in the unit, ulimit -n, docker run --ulimit nofile=\n";

    /// <summary>
    /// Writes <see cref="TooLow"/> to stderr with write(2) on descriptor 2 (Console would need a
    /// descriptor of its own, which a process at its limit does not have); true if the limit is
    /// below what <paramref name="args"/> need (<see cref="MinimumFor"/>).
    /// </summary>
    public static unsafe bool RefuseTooLow(string[] args)
    {
        long minimum = MinimumFor(args);
        if (Current() is not { } limit || limit >= minimum)
        {
            return false;
        }
        byte[] line = System.Text.Encoding.UTF8.GetBytes(TooLow(limit, minimum));
        fixed (byte* bytes = line)
        {
            _ = Resource.write(2, bytes, line.Length);
        }
        return true;
    }

    /// <summary>The soft limit; null when it cannot be read, <see cref="long.MaxValue"/> for unlimited.</summary>
    public static unsafe long? Current()
    {
        try
        {
            Resource.RLimit limit;
            if (Resource.getrlimit(Resource.RLIMIT_NOFILE, &limit) != 0)
            {
                return null;
            }
            return limit.rlim_cur >= long.MaxValue ? long.MaxValue : (long)limit.rlim_cur;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>How many descriptors the process has open (the entries of /proc/self/fd, less the one the listing uses); null when they cannot be listed.</summary>
    public static int? OpenNow()
    {
        try
        {
            return Math.Max(0, Directory.GetFileSystemEntries("/proc/self/fd").Length - 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
