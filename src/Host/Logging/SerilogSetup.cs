using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace Firezone.Actors.Host.Logging;

/// <summary>Builds the Serilog logger every part of the host (and Akka, through Akka.Logger.Serilog) writes to.</summary>
public static class SerilogSetup
{
    /// <summary>A terminal's lines: the message as the log file has it (":l", see <see cref="JournalLogFormat"/>).</summary>
    public const string HumanTemplate = "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} {Level:u3} {Message:l}{NewLine}{Exception}";

    public static Logger Create(LogOptions options) => Create(options, out _);

    /// <param name="file">The log file's sink, or null without one (see <see cref="AppendOnlyFileSink.Discard"/>).</param>
    internal static Logger Create(LogOptions options, out AppendOnlyFileSink? file)
    {
        file = null;
        var configuration = new LoggerConfiguration()
            .MinimumLevel.Is(options.MinimumLevel)
            // Akka's "CoordinatedShutdown invoked ... Exiting with [ExitCode:0]" (Information) also
            // comes when the daemon exits 1 after a failed start; its warnings and errors still come.
            .MinimumLevel.Override(CoordinatedShutdownSource, Max(options.MinimumLevel, LogEventLevel.Warning))
            // The generic host logs a failed start as "Hosting failed to start" with the stack trace;
            // TunnelDaemon reports an expected failure (socket in use, no /dev/net/tun, no nft) as
            // one line and logs the stack trace itself only for an unexpected one.
            .Filter.ByExcluding(IsHostStartupFault)
            .Enrich.FromLogContext()
            .Enrich.With(new ActorPathEnricher());
        if (options.Console)
        {
            if (options.JournalConsole || options.HumanConsole)
            {
                // A person reads it (or journalctl shows it): the problem stderr's line says is
                // said there once, when both reach the same place (StandardErrorProblem).
                bool leaveOut = options.ConsoleIsStandardError;
                bool journal = options.JournalConsole;
                configuration = configuration.WriteTo.Logger(console =>
                {
                    if (leaveOut)
                    {
                        console.Filter.ByExcluding(StandardErrorProblem.IsOne);
                    }
                    if (journal)
                    {
                        console.WriteTo.Console(new JournalLogFormat());
                    }
                    else
                    {
                        console.WriteTo.Console(outputTemplate: HumanTemplate, formatProvider: System.Globalization.CultureInfo.InvariantCulture);
                    }
                });
            }
            else
            {
                configuration = configuration.WriteTo.Console(options.JsonConsoleForJournal ? JsonLogFormat.CreateForJournal() : JsonLogFormat.Create());
            }
        }
        if (options.FilePath is { } path)
        {
            string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
            if (directory is not null)
            {
                try
                {
                    // 0755 less the umask, as systemd's LogsDirectory= and wireguard-go's socket
                    // directory: not the umask alone (0777 under umask 0), since another user who may
                    // write there swaps the log for a symlink and a root daemon appends to its target.
                    Directory.CreateDirectory(directory, LogDirectoryMode);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // .NET's text ("Read-only file system : '/var/log/x'") names neither the log
                    // file nor what was being done; the one line should say both.
                    throw new IOException($"{path}: cannot create the log file's directory {directory}: {Reason(e)}", e);
                }
            }
            // O_APPEND, one write per line: see AppendOnlyFileSink.
            file = AppendOnlyFileSink.Open(path, JsonLogFormat.Create());
            configuration = configuration.WriteTo.Sink(file);
        }
        return configuration.CreateLogger();
    }

    private const UnixFileMode LogDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>The reason alone, without the " : 'PATH'" .NET appends to a file system error.</summary>
    private static string Reason(Exception e)
    {
        string message = e.Message;
        int at = message.LastIndexOf(" : '", StringComparison.Ordinal);
        return at > 0 ? message[..at] : message;
    }

    public const string HostSource = "Microsoft.Extensions.Hosting.Internal.Host";

    public const string CoordinatedShutdownSource = "Akka.Actor.CoordinatedShutdown";

    /// <summary>Microsoft.Extensions.Hosting's LoggerEventIds.HostedServiceStartupFaulted.</summary>
    private const string HostStartupFaulted = "HostedServiceStartupFaulted";

    private static bool IsHostStartupFault(LogEvent logEvent) =>
        logEvent.Properties.TryGetValue("SourceContext", out var source) && source is ScalarValue { Value: HostSource }
        && logEvent.Properties.TryGetValue("EventId", out var eventId) && eventId is StructureValue structure
        && structure.Properties.Any(p => p.Name == "Name" && p.Value is ScalarValue { Value: HostStartupFaulted });

    private static LogEventLevel Max(LogEventLevel a, LogEventLevel b) => a > b ? a : b;
}
