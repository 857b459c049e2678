using System.Globalization;
using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Display;

namespace Firezone.Actors.Host.Logging;

/// <summary>
/// Console lines for the systemd journal: the message (and exception) with the level as a syslog
/// priority prefix, <c>&lt;3&gt;</c> for an error, which journald takes from the start of each line
/// of a service's stdout (sd-daemon(3)), so <c>journalctl -p warning</c> and the colours of
/// <c>systemctl status</c> work. No time stamp: the journal records one. The JSON lines, with the
/// event's properties, stay in the log file.
/// </summary>
public sealed class JournalLogFormat : ITextFormatter
{
    // ":l", not ":lj": the JSON ("j") rendering quotes every value that is not a string or a number
    // (an enum: ECN "Normal"), where the log file's message, which the same line should repeat, does not.
    private readonly MessageTemplateTextFormatter _message = new("{Message:l}{NewLine}{Exception}", CultureInfo.InvariantCulture);

    public void Format(LogEvent logEvent, TextWriter output)
    {
        var text = new StringWriter(CultureInfo.InvariantCulture);
        _message.Format(logEvent, text);
        JournalLines.Write(output, Prefix(logEvent.Level), text.ToString());
    }

    /// <summary>syslog(3) priorities, as Microsoft.Extensions.Logging's systemd console format maps them.</summary>
    public static string Prefix(LogEventLevel level) => level switch
    {
        LogEventLevel.Fatal => "<2>",
        LogEventLevel.Error => "<3>",
        LogEventLevel.Warning => "<4>",
        LogEventLevel.Information => "<6>",
        _ => "<7>",
    };
}
