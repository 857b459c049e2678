using Serilog.Core;
using Serilog.Events;

namespace Firezone.Actors.Host.Logging;

/// <summary>
/// Akka.Logger.Serilog names the sender of each log event as its <c>ActorPath</c>: the actor whose
/// thread logged. A line from anything else (Akka's EventStream and ActorSystem, or an actor's
/// logging adapter used on a socket or TUN I/O thread) got <c>akka://firezone-tunnel/deadLetters</c>,
/// and <c>jq 'select(.ActorPath | contains("tunnel-1"))'</c> missed it. Such a line gets its
/// <c>LogSource</c> when that is an actor's path (the adapter's actor), and no <c>ActorPath</c>
/// otherwise. Runs on the root logger, after Akka.Logger.Serilog's ForContext properties.
/// </summary>
internal sealed class ActorPathEnricher : ILogEventEnricher
{
    private const string ActorPath = "ActorPath";
    private const string LogSource = "LogSource";

    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
    {
        if (!logEvent.Properties.TryGetValue(ActorPath, out var path)
            || path is not ScalarValue { Value: var value }
            || value?.ToString() is not { } text
            || !text.EndsWith("/deadLetters", StringComparison.Ordinal))
        {
            return;
        }
        if (logEvent.Properties.TryGetValue(LogSource, out var source)
            && source is ScalarValue { Value: string sourceText }
            && sourceText.StartsWith("akka://", StringComparison.Ordinal))
        {
            logEvent.AddOrUpdateProperty(new LogEventProperty(ActorPath, new ScalarValue(sourceText)));
        }
        else
        {
            logEvent.RemovePropertyIfPresent(ActorPath);
        }
    }
}
