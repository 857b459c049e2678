namespace Firezone.Actors.Host.Logging;

/// <summary>
/// Writes text as journal lines: every line with the priority prefix, since journald reads the
/// priority per line (an exception's stack trace would otherwise be info).
/// </summary>
public static class JournalLines
{
    public static void Write(TextWriter output, string prefix, string text)
    {
        int start = 0;
        while (start < text.Length)
        {
            int end = text.IndexOf('\n', start);
            int next = end < 0 ? text.Length : end + 1;
            output.Write(prefix);
            output.Write(text.AsSpan(start, (end < 0 ? text.Length : end) - start));
            output.Write('\n');
            start = next;
        }
    }
}
