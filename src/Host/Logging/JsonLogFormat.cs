using Serilog.Formatting;
using Serilog.Templates;

namespace Firezone.Actors.Host.Logging;

/// <summary>
/// One JSON object per line with <c>time</c> (UTC, ISO 8601), <c>severity</c>, <c>message</c>
/// (rendered), the exception if any, and the event's properties, so
/// <c>jq -r '"\(.time) \(.severity) \(.message)"'</c> reads the log.
/// </summary>
public static class JsonLogFormat
{
    public const string Template = "{ {time: UtcDateTime(@t), severity: @l, message: @m, exception: @x, ..@p} }\n";

    public static ITextFormatter Create() => new ExpressionTemplate(Template);

    /// <summary>
    /// The same lines for the systemd journal (<c>--log-format json</c> under a unit): each with its
    /// level's syslog priority prefix (<see cref="JournalLogFormat.Prefix"/>), which journald takes
    /// off, so <c>journalctl -p warning</c> and <c>systemctl status</c> see the levels; one prefix a
    /// line, since an event is one line (an exception is a string in it).
    /// </summary>
    public static ITextFormatter CreateForJournal() => new PrefixedWithPriority(Create());

    private sealed class PrefixedWithPriority(ITextFormatter json) : ITextFormatter
    {
        public void Format(Serilog.Events.LogEvent logEvent, TextWriter output)
        {
            output.Write(JournalLogFormat.Prefix(logEvent.Level));
            json.Format(logEvent, output);
        }
    }
}
