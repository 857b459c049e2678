using System.Diagnostics;

namespace Firezone.Actors.Actors.Time;

/// <summary>The production clock: <see cref="Stopwatch"/> ticks since this instance was created.</summary>
public sealed class StopwatchClock : IMonotonicClock
{
    private readonly long _origin = Stopwatch.GetTimestamp();

    /// <summary>Wall-clock time (UTC) at <see cref="Now"/> = 0, what <c>Device</c> needs for TAI64N timestamps.</summary>
    public DateTime WallClockAtZero { get; } = DateTime.UtcNow;

    public TimeSpan Now => Stopwatch.GetElapsedTime(_origin);
}
