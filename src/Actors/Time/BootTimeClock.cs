using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Time;

/// <summary>
/// The production clock: <see cref="BootTime"/> (CLOCK_BOOTTIME) since this instance was created,
/// so a session's age counts the time the machine was suspended (see <see cref="BootTime"/>). The
/// actors' timers run on Akka's scheduler, which sleeps on CLOCK_MONOTONIC: after a resume a timer
/// fires as late as the kernel's WireGuard's (jiffies stop in suspend too), but the first packet
/// sent after it finds the session too old and starts a handshake at once, as the kernel's does.
/// </summary>
public sealed class BootTimeClock : IMonotonicClock
{
    private readonly TimeSpan _origin = BootTime.Now();

    /// <summary>Wall-clock time (UTC) at <see cref="Now"/> = 0, what <c>Device</c> needs for TAI64N timestamps.</summary>
    public DateTime WallClockAtZero { get; } = DateTime.UtcNow;

    public TimeSpan Now => BootTime.Now() - _origin;
}
