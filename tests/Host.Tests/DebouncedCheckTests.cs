using Firezone.Actors.Host.Network;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The check after a burst of netlink announcements (a gateway's nftables table, a service's
/// addresses): a burst makes one check, a request during a check makes one more after it (never
/// two at once), the stop waits for a check under way and nothing runs after it, and a failing
/// check is reported instead of lost.
/// </summary>
public sealed class DebouncedCheckTests
{
    private static readonly TimeSpan Delay = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_burst_of_requests_makes_one_check()
    {
        // The burst must come within one delay to be one burst: 500 ms here, not Delay (50 ms), which
        // a test thread descheduled in the middle of the loop (a loaded 2-core machine) exceeded, and
        // the requests after the first check rightly made a second.
        var delay = TimeSpan.FromMilliseconds(500);
        int checks = 0;
        var check = new DebouncedCheck(delay, _ => { Interlocked.Increment(ref checks); return Task.CompletedTask; }, e => Assert.Fail(e.Message));
        for (int i = 0; i < 100; i++)
        {
            check.Request();
        }
        // The check comes Delay after the burst, or later on a loaded machine: wait for it (bounded),
        // since the stop drops a check still waiting. A fixed 300 ms wait counted 0 checks whenever
        // the thread pool was slower than that (other test classes run alongside on 2 cores).
        for (var deadline = DateTime.UtcNow + Bound; Volatile.Read(ref checks) < 1 && DateTime.UtcNow < deadline; await Task.Delay(10))
        {
        }
        await Task.Delay(delay * 3); // a second check, which the burst must not make, would come by now
        await check.StopAsync();
        Assert.Equal(1, checks);
    }

    [Fact]
    public async Task A_request_during_a_check_makes_one_more_after_it_never_two_at_once()
    {
        int running = 0, most = 0, checks = 0;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var check = new DebouncedCheck(Delay, async _ =>
        {
            int now = Interlocked.Increment(ref running);
            InterlockedMax(ref most, now);
            Interlocked.Increment(ref checks);
            started.TrySetResult();
            await release.Task;
            Interlocked.Decrement(ref running);
        }, e => Assert.Fail(e.Message));

        check.Request();
        await started.Task.WaitAsync(Bound);
        check.Request(); // during the first check
        check.Request();
        await Task.Delay(Delay * 4); // the second's wait is over; it waits for the first
        Assert.Equal(1, Volatile.Read(ref checks));
        release.SetResult();
        for (var deadline = DateTime.UtcNow + Bound; Volatile.Read(ref checks) < 2 && DateTime.UtcNow < deadline; await Task.Delay(10))
        {
        }
        await check.StopAsync();
        Assert.Equal(2, checks);
        Assert.Equal(1, most);
    }

    [Fact]
    public async Task The_stop_waits_for_a_check_under_way_and_nothing_runs_after_it()
    {
        int checks = 0;
        bool finished = false;
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var check = new DebouncedCheck(Delay, async token =>
        {
            Interlocked.Increment(ref checks);
            started.TrySetResult();
            await Task.Delay(200, CancellationToken.None); // a check that does not give up at the stop
            finished = true;
        }, e => Assert.Fail(e.Message));
        check.Request();
        await started.Task.WaitAsync(Bound);

        await check.StopAsync().WaitAsync(Bound);
        Assert.True(finished);
        check.Request();
        await Task.Delay(Delay * 4);
        Assert.Equal(1, checks);
    }

    [Fact]
    public async Task A_waiting_check_is_dropped_at_the_stop()
    {
        int checks = 0;
        var check = new DebouncedCheck(TimeSpan.FromSeconds(30), _ => { Interlocked.Increment(ref checks); return Task.CompletedTask; }, e => Assert.Fail(e.Message));
        check.Request();
        await check.StopAsync().WaitAsync(Bound); // not 30 s
        Assert.Equal(0, checks);
    }

    [Fact]
    public async Task A_failing_check_is_reported_and_later_requests_still_check()
    {
        var failures = new List<Exception>();
        int checks = 0;
        var check = new DebouncedCheck(Delay, _ =>
        {
            if (Interlocked.Increment(ref checks) == 1)
            {
                throw new InvalidOperationException("nft crashed");
            }
            return Task.CompletedTask;
        }, e => { lock (failures) { failures.Add(e); } });
        check.Request();
        for (var deadline = DateTime.UtcNow + Bound; Volatile.Read(ref checks) < 1 && DateTime.UtcNow < deadline; await Task.Delay(10))
        {
        }
        await Task.Delay(Delay);
        check.Request();
        for (var deadline = DateTime.UtcNow + Bound; Volatile.Read(ref checks) < 2 && DateTime.UtcNow < deadline; await Task.Delay(10))
        {
        }
        await check.StopAsync();
        Assert.Equal(2, checks);
        Assert.Equal("nft crashed", Assert.Single(failures).Message);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        for (int seen = Volatile.Read(ref target); value > seen; seen = Volatile.Read(ref target))
        {
            if (Interlocked.CompareExchange(ref target, value, seen) == seen)
            {
                return;
            }
        }
    }
}
