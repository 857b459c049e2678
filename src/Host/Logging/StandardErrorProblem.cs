using Serilog.Events;
using Tmds.Linux;

namespace Firezone.Actors.Host.Logging;

/// <summary>
/// The log events whose problem the daemon also says as its one plain line on stderr
/// ("firezone-tunnel: PROBLEM"): a start that failed, a tunnel that stopped on a failure, a
/// default log file the daemon runs without (a notice there). Where
/// stdout and stderr are one file (a terminal, the journal's stream) the console log leaves them
/// out, so the reader sees the problem once, as wireguard-go says it; the log file keeps them, and
/// so does a JSON console (stdout a pipe to jq, a file), whose reader is a program.
/// </summary>
public static class StandardErrorProblem
{
    public const string CannotStart = "Cannot start: {Problem}";

    public const string StoppedBecause = "Stopped because {Problem}";

    public const string RunningWithoutLogFile = "Running without a log file: {Problem}";

    internal static bool IsOne(LogEvent logEvent) =>
        logEvent.MessageTemplate.Text is CannotStart or StoppedBecause or RunningWithoutLogFile;

    /// <summary>Whether stdout and stderr are the same open file (device and inode): the same terminal, journal stream or file.</summary>
    public static unsafe bool OutputIsStandardError()
    {
        stat output, error;
        return LibC.fstat(1, &output) == 0 && LibC.fstat(2, &error) == 0
            && output.st_dev == error.st_dev && output.st_ino == error.st_ino;
    }
}
