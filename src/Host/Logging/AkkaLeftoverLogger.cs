using Akka.Event;
using LogEventLevel = Serilog.Events.LogEventLevel;

namespace Firezone.Actors.Host.Logging;

/// <summary>
/// Akka's stand-in logger (<c>akka.stdout-logger-class</c>): what Akka logs before its loggers
/// start and after they stop, and the events still queued for the Serilog logger actor when the
/// actor system stops it (its mailbox hands them here). Akka's own StandardOutLogger wrote those in
/// its text format ("[DEBUG][date][Thread 0007][EventStream] ...") straight to stdout, which
/// carries the daemon's JSON lines (or the journal's prefixed ones), and they never reached the
/// log file: at --log-level debug a stop often wrote "Shutting down: StandardOutLogger started"
/// there, a line `| jq` cannot read. Here they go to the daemon's Serilog logger like every other
/// line, at Akka's level for them.
/// </summary>
public sealed class AkkaLeftoverLogger : MinimalLogger
{
    /// <summary>The HOCON that makes Akka use it.</summary>
    public static readonly string Hocon = $"akka.stdout-logger-class = \"{typeof(AkkaLeftoverLogger).AssemblyQualifiedName}\"";

    protected override void Log(object message)
    {
        if (message is not LogEvent logEvent)
        {
            return;
        }
        var logger = Serilog.Log.Logger
            .ForContext("LogSource", logEvent.LogSource)
            .ForContext(Serilog.Core.Constants.SourceContextPropertyName, logEvent.LogClass?.FullName);
        // With Akka.Logger.Serilog's formatter an actor's message is a Serilog template with its
        // arguments (named holes become properties); anything else is text as it is.
        if (logEvent.Message is LogMessage template)
        {
            logger.Write(Level(logEvent.LogLevel()), logEvent.Cause, template.Format, [.. template.Parameters()]);
        }
        else
        {
            logger.Write(Level(logEvent.LogLevel()), logEvent.Cause, "{Message:l}", logEvent.Message?.ToString());
        }
    }

    private static LogEventLevel Level(LogLevel level) => level switch
    {
        LogLevel.DebugLevel => LogEventLevel.Debug,
        LogLevel.InfoLevel => LogEventLevel.Information,
        LogLevel.WarningLevel => LogEventLevel.Warning,
        _ => LogEventLevel.Error,
    };
}
