using System.Globalization;

namespace Firezone.Actors.Native.Tests;

/// <summary>The daemon's clock source (<see cref="BootTime"/>, CLOCK_BOOTTIME).</summary>
public sealed class BootTimeTests
{
    /// <summary>
    /// It reads the time since boot that /proc/uptime shows (the kernel's boot-time clock, suspended
    /// time included; 10 ms steps), and moves on with the time that passes. This machine has never
    /// been suspended, so CLOCK_MONOTONIC would read the same here: what tells the two apart, a
    /// suspend, is the actors' test <c>TimerTests.After_a_suspend_longer_than_Reject_After_Time_...</c>.
    /// </summary>
    [Fact]
    public void It_reads_the_time_since_boot_and_moves_on_with_real_time()
    {
        // The stopwatch's interval contains first..second, so it is never shorter than their
        // difference (both clocks run at the same rate without a suspend). It once started only
        // after the uptime reads and the first Assert (JIT on first use): a thread descheduled for
        // over a millisecond there, as on a loaded 2-core machine, made a correct clock fail.
        var elapsed = System.Diagnostics.Stopwatch.StartNew();
        double before = Uptime();
        TimeSpan first = BootTime.Now();
        double after = Uptime();
        Assert.InRange(first.TotalSeconds, before - 0.011, after + 0.011);

        Thread.Sleep(200);
        TimeSpan second = BootTime.Now();
        double stopwatch = elapsed.Elapsed.TotalMilliseconds;
        Assert.InRange((second - first).TotalMilliseconds, 199, stopwatch + 1);
    }

    private static double Uptime() =>
        double.Parse(File.ReadAllText("/proc/uptime").Split(' ')[0], CultureInfo.InvariantCulture);
}
