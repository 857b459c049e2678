using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Firezone.Actors.Host.Logging;

/// <summary>
/// Standard error under <c>--log-format json</c>: each line the daemon writes there (a failed start,
/// a configuration mistake's <c>FILE:LINE: problem</c>, a notice it starts despite, a usage error)
/// becomes one JSON object with the log's <c>time</c>, <c>severity</c> and <c>message</c>
/// (<see cref="JsonLogFormat"/>), so a container runtime that merges stdout and stderr hands jq
/// nothing it cannot parse. A line is an Error unless it carries <see cref="JournalErrorWriter.NoticeLine"/>'s
/// warning prefix; the leading "firezone-tunnel: " is left out, as the log's messages have none.
/// Written by hand: Serilog's console sink formats events, not another writer's text.
/// </summary>
/// <param name="journal">stderr is the systemd journal: each object gets its syslog priority
/// prefix, which journald takes off and records (<c>journalctl -p err</c> still shows a failed start).</param>
public sealed class JsonErrorWriter(TextWriter inner, TimeProvider clock, bool journal = false) : TextWriter
{
    private const string ProgramPrefix = "firezone-tunnel: ";

    /// <summary>True once <see cref="Install"/> put it on stderr.</summary>
    public static bool Installed { get; private set; }

    /// <summary>Wraps stderr; <paramref name="journal"/> when it is the journal.</summary>
    public static void Install(bool journal)
    {
        Console.SetError(TextWriter.Synchronized(new JsonErrorWriter(Console.Error, TimeProvider.System, journal)));
        Installed = true;
    }

    // Quotes and apostrophes as they are ("'wg 0' is not ..."), as the log's lines have them; the
    // default encoder's \u0027 is for JSON inside HTML.
    private static readonly JsonWriterOptions Options = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly StringBuilder _line = new();

    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        if (value == '\n')
        {
            WriteLineObject();
        }
        else
        {
            _line.Append(value);
        }
    }

    public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

    public override void Write(string? value)
    {
        if (value is null)
        {
            return;
        }
        foreach (char c in value)
        {
            Write(c);
        }
    }

    /// <summary>A line not ended yet is written as it is, an object of its own.</summary>
    public override void Flush()
    {
        if (_line.Length > 0)
        {
            WriteLineObject();
        }
        inner.Flush();
    }

    private void WriteLineObject()
    {
        string text = _line.ToString().TrimEnd('\r');
        _line.Clear();
        string severity = "Error";
        string priority = "<3>";
        // sd-daemon's "<N>" (NoticeLine's "<4>"): N a syslog priority 0 to 7.
        if (JournalErrorWriter.StartsWithPriority(text, 0))
        {
            severity = text[1] switch { <= '3' => "Error", '4' => "Warning", '7' => "Debug", _ => "Information" };
            priority = text[..3];
            text = text[3..];
        }
        if (text.StartsWith(ProgramPrefix, StringComparison.Ordinal))
        {
            text = text[ProgramPrefix.Length..];
        }
        var buffer = new ArrayBufferWriter<byte>(text.Length + 96);
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartObject();
            json.WriteString("time", clock.GetUtcNow().UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", System.Globalization.CultureInfo.InvariantCulture));
            json.WriteString("severity", severity);
            json.WriteString("message", text);
            json.WriteEndObject();
        }
        inner.Write((journal ? priority : "") + Encoding.UTF8.GetString(buffer.WrittenSpan) + "\n");
        inner.Flush();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Flush();
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
