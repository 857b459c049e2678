using System.Text;

namespace Firezone.Actors.Host.Logging;

/// <summary>
/// Standard error when it is the journal: every line the daemon writes there is a failure (a
/// configuration mistake's <c>FILE:LINE: problem</c>, a start that failed), so each gets the
/// <c>&lt;3&gt;</c> (error) prefix; without it journald records it as info, and
/// <c>journalctl -p err</c> does not show why a unit failed.
/// </summary>
public sealed class JournalErrorWriter(TextWriter inner) : TextWriter
{
    private static readonly string Prefix = JournalLogFormat.Prefix(Serilog.Events.LogEventLevel.Error);

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
        foreach (char c in value)
        {
            if (_atLineStart)
            {
                text.Append(Prefix);
            }
            text.Append(c);
            _atLineStart = c == '\n';
        }
        inner.Write(text.ToString());
    }

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
