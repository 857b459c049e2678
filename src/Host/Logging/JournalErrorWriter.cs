using System.Text;

namespace Firezone.Actors.Host.Logging;

/// <summary>
/// Standard error when it is the journal: a line the daemon writes there is a failure (a
/// configuration mistake's <c>FILE:LINE: problem</c>, a start that failed) unless it says otherwise,
/// so each gets the <c>&lt;3&gt;</c> (error) prefix; without it journald records it as info, and
/// <c>journalctl -p err</c> does not show why a unit failed. A line that already starts with a
/// priority (<see cref="NoticeLine"/>: a notice the daemon starts despite, a name-resolution retry)
/// keeps it, so <c>journalctl -p err</c> alerts do not fire on those.
/// </summary>
public sealed class JournalErrorWriter(TextWriter inner) : TextWriter
{
    private static readonly string Prefix = JournalLogFormat.Prefix(Serilog.Events.LogEventLevel.Error);
    private static readonly string NoticePrefix = JournalLogFormat.Prefix(Serilog.Events.LogEventLevel.Warning);

    /// <summary>True once <see cref="Install"/> put it on stderr (stderr is the journal).</summary>
    public static bool Installed { get; private set; }

    /// <summary>Wraps stderr (call only when it is the journal).</summary>
    public static void Install()
    {
        Console.SetError(new JournalErrorWriter(Console.Error));
        Installed = true;
    }

    /// <summary>
    /// <paramref name="line"/> for stderr as a notice (priority warning under the journal, severity
    /// Warning under <see cref="JsonErrorWriter"/>), not a failure.
    /// </summary>
    public static string NoticeLine(string line) => Installed || JsonErrorWriter.Installed ? NoticePrefix + line : line;

    private bool _atLineStart = true;

    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value) => Write(value.ToString());

    public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

    /// <summary>One write to the stream per call (journald reads whole lines anyway).</summary>
    public override void Write(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return;
        }
        var text = new StringBuilder(value.Length + 3);
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            if (_atLineStart && !StartsWithPriority(value, i))
            {
                text.Append(Prefix);
            }
            text.Append(c);
            _atLineStart = c == '\n';
        }
        inner.Write(text.ToString());
    }

    /// <summary>sd-daemon's "&lt;N&gt;" at <paramref name="at"/>, N a syslog priority 0 to 7.</summary>
    internal static bool StartsWithPriority(string value, int at) =>
        at + 2 < value.Length && value[at] == '<' && value[at + 1] is >= '0' and <= '7' && value[at + 2] == '>';

    public override void Flush() => inner.Flush();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
