using Firezone.Actors.Native.Interop;

namespace Firezone.Actors.Native;

/// <summary>
/// Linux's CLOCK_BOOTTIME: monotonic like CLOCK_MONOTONIC (what .NET's <c>Stopwatch</c> and
/// <c>Environment.TickCount64</c> read), but it also counts the time the machine was suspended.
/// WireGuard's session ages must: after a laptop's hour of sleep a session is an hour older, and the
/// Gateway dropped it long ago (Reject-After-Time, 180 s). The kernel's WireGuard reads this clock
/// for them (ktime_get_coarse_boottime_ns), and Firezone's connlib moved to a suspend-aware clock
/// for the same reason (firezone/firezone#14143); wireguard-go, on Go's CLOCK_MONOTONIC, keeps
/// sending on the dead session after a resume until its 15-s handshake timeout (wireguard-go#29).
/// </summary>
public static class BootTime
{
    /// <summary>Time since the system booted, suspended time included.</summary>
    public static unsafe TimeSpan Now()
    {
        Clocks.timespec time;
        if (Clocks.clock_gettime(Clocks.CLOCK_BOOTTIME, &time) != 0)
        {
            // Only a kernel older than 2.6.39 (2011) refuses it.
            throw new PlatformNotSupportedException("clock_gettime(CLOCK_BOOTTIME) failed: this kernel has no CLOCK_BOOTTIME (Linux 2.6.39 or later needed)");
        }
        return TimeSpan.FromTicks(time.tv_sec * TimeSpan.TicksPerSecond + time.tv_nsec / TimeSpan.NanosecondsPerTick);
    }
}
