namespace Firezone.Actors.Actors;

/// <summary>
/// A <see cref="LogRateLimit"/> for a line that reports a running count: at most one line per
/// interval, and none when the count has not moved since the last line (a tunnel that was flooded
/// once does not repeat the same figure every interval). Not thread-safe, as LogRateLimit.
/// </summary>
internal struct CountedLogRateLimit
{
    private LogRateLimit _limit;
    private long _logged;

    /// <summary>True, and <paramref name="count"/> is remembered, when a line about it may be written at <paramref name="now"/>.</summary>
    public bool TryTake(long count, TimeSpan now, TimeSpan interval)
    {
        if (count == _logged || !_limit.TryTake(now, interval))
        {
            return false;
        }
        _logged = count;
        return true;
    }
}
