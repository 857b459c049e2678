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
}
