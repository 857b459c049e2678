namespace Firezone.Actors.Host.Logging;

/// <summary>
/// How the console (stdout) and stderr lines look: <see cref="Auto"/> picks by where stdout goes
/// (a terminal: human lines; the journal: lines with a syslog priority; else JSON lines), the others
/// are asked for with <c>--log-format</c> or <see cref="Variable"/>.
/// </summary>
public enum LogFormat
{
    Auto,

    /// <summary>
    /// JSON lines on stdout, and every line the daemon writes on stderr as one JSON object too
    /// (<see cref="JsonErrorWriter"/>): a container's log, where the runtime merges both streams
    /// (<c>kubectl logs | jq</c>), and a terminal's (<c>docker run -t</c>) is all JSON.
    /// </summary>
    Json,

    /// <summary>Human lines on stdout even when it is no terminal (a file, a pipe to less).</summary>
    Text,
}

/// <summary>Parsing <see cref="LogFormat"/> from the option, the environment and the raw arguments.</summary>
public static class LogFormats
{
    public const string Option = "--log-format";

    /// <summary>The environment variable for <c>--log-format</c> (a container's spec sets variables more easily than arguments).</summary>
    public const string Variable = "FIREZONE_LOG_FORMAT";

    public const string Words = "auto, json or text";

    public static bool TryParse(string? text, out LogFormat format)
    {
        format = LogFormat.Auto;
        switch (text?.ToLowerInvariant())
        {
            case null:
            case "auto":
                return true;
            case "json":
                format = LogFormat.Json;
                return true;
            case "text":
                format = LogFormat.Text;
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// Whether stderr should be JSON from the first line on: <c>--log-format json</c> (or
    /// <c>--log-format=json</c>) among <paramref name="arguments"/>, else <see cref="Variable"/>. Read
    /// before the command line is parsed, whose own errors go to stderr too; the parse itself
    /// rejects a value that is none of <see cref="Words"/>.
    /// </summary>
    public static bool StandardErrorIsJson(IReadOnlyList<string> arguments, string? variable)
    {
        string? given = null;
        for (int i = 0; i < arguments.Count; i++)
        {
            string argument = arguments[i];
            if (argument == "--")
            {
                break;
            }
            if (argument == Option && i + 1 < arguments.Count)
            {
                given = arguments[++i];
            }
            else if (argument.StartsWith(Option + "=", StringComparison.Ordinal) || argument.StartsWith(Option + ":", StringComparison.Ordinal))
            {
                given = argument[(Option.Length + 1)..];
            }
        }
        return TryParse(given ?? variable, out var format) && format == LogFormat.Json;
    }
}
