using System.Globalization;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Firezone.Actors.Host.Logging;

/// <summary>
/// Whether a standard stream is the systemd journal. A service's stdout and stderr are a stream
/// socket to journald, and systemd sets <c>JOURNAL_STREAM</c> to its <c>DEVICE:INODE</c>
/// (systemd.exec(5), "Environment Variables in Spawned Processes"). A program the service starts
/// with other output (a file, a pipe) inherits the variable, so the descriptor itself is compared,
/// as the man page asks.
/// </summary>
public static class JournalStream
{
    public const string Variable = "JOURNAL_STREAM";

    public static bool IsConnected(int fd) => Matches(Environment.GetEnvironmentVariable(Variable), fd);

    internal static unsafe bool Matches(string? value, int fd)
    {
        if (!TryParse(value, out ulong device, out ulong inode))
        {
            return false;
        }
        stat status;
        if (fstat(fd, &status) != 0)
        {
            return false;
        }
        return (ulong)status.st_dev == device && (ulong)status.st_ino == inode;
    }

    /// <summary>Both numbers are decimal (systemd writes them with "%lu:%lu").</summary>
    internal static bool TryParse(string? value, out ulong device, out ulong inode)
    {
        device = 0;
        inode = 0;
        int colon = value?.IndexOf(':') ?? -1;
        return colon > 0
            && ulong.TryParse(value.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out device)
            && ulong.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out inode);
    }
}
