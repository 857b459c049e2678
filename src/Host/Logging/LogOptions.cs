using Serilog.Events;

namespace Firezone.Actors.Host.Logging;

/// <summary>Where and how much the daemon logs.</summary>
public sealed record LogOptions
{
    public const string DefaultDirectory = "/var/log/firezone-tunnel";

    /// <summary>The JSON-lines log file; null for none.</summary>
    public string? FilePath { get; init; }

    /// <summary>
    /// Whether <see cref="FilePath"/> is the default rather than one given with --log-file: a
    /// default file that cannot be opened (a read-only /var/log) does not stop the daemon, since
    /// under wg-quick, which passes no options, nobody could name another.
    /// </summary>
    public bool FileIsDefault { get; init; }

    public LogEventLevel MinimumLevel { get; init; } = LogEventLevel.Information;

    /// <summary>Also log to stdout (off for a detached daemon, whose stdout is /dev/null).</summary>
    public bool Console { get; init; } = true;

    /// <summary>Human-readable console lines instead of JSON (when stdout is a terminal).</summary>
    public bool HumanConsole { get; init; }

    /// <summary>
    /// stdout is stderr's file (a terminal, the journal): a human or journal console leaves out what
    /// stderr's one line says (<see cref="StandardErrorProblem"/>).
    /// </summary>
    public bool ConsoleIsStandardError { get; init; }

    /// <summary>Console lines for the journal, with syslog priority prefixes (when stdout is the journal, under systemd).</summary>
    public bool JournalConsole { get; init; }

    /// <summary>JSON console lines with syslog priority prefixes (<c>--log-format json</c> with stdout the journal).</summary>
    public bool JsonConsoleForJournal { get; init; }

    /// <summary>The default file for an interface: /var/log/firezone-tunnel/INTERFACE.log.</summary>
    public static string DefaultFileFor(string interfaceName) => Path.Combine(DefaultDirectory, interfaceName + ".log");

    /// <summary>Parses wireguard-go's LOG_LEVEL words and Serilog's level names.</summary>
    public static bool TryParseLevel(string text, out LogEventLevel level)
    {
        switch (text.ToLowerInvariant())
        {
            case "verbose":
            case "debug":
                level = LogEventLevel.Debug;
                return true;
            case "trace":
                level = LogEventLevel.Verbose;
                return true;
            case "info":
            case "information":
                level = LogEventLevel.Information;
                return true;
            case "warning":
            case "warn":
                level = LogEventLevel.Warning;
                return true;
            case "error":
                level = LogEventLevel.Error;
                return true;
            case "silent":
                level = LogEventLevel.Fatal;
                return true;
            default:
                level = LogEventLevel.Information;
                return false;
        }
    }
}
