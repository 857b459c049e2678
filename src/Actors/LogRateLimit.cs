namespace Firezone.Actors.Actors;

/// <summary>
/// At most one log line per interval for one kind of event (a flood of bogus handshakes or odd ECN
/// marks must not flood the log): the time the next line may be written. The interval is the
/// caller's constant, passed in, so each limit costs one field (10,000 idle peers hold several).
/// Not thread-safe: owned by one actor or used under one lock.
/// </summary>
internal struct LogRateLimit
{
    private TimeSpan _next;

    /// <summary>Whether a line may be written at <paramref name="now"/>, without taking it.</summary>
    public readonly bool IsDue(TimeSpan now) => now >= _next;

    /// <summary>True, and the next line waits <paramref name="interval"/>, when a line may be written at <paramref name="now"/>.</summary>
    public bool TryTake(TimeSpan now, TimeSpan interval)
    {
        if (now < _next)
        {
            return false;
        }
        _next = now + interval;
        return true;
    }
}
