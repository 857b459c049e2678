using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Host.Tunnel;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The leak check after a tunnel stops counts only what has not come back by its bound: buffers
/// the BufferReclaimer returns a moment later (dead letters) made a rebuild under traffic warn
/// "1 packet buffers were not returned" for buffers that did come back (found by a control-plane review).
/// </summary>
public sealed class PoolReturnsTests
{
    [Fact]
    public async Task Buffers_returned_a_moment_after_the_stop_are_not_counted()
    {
        var pool = new PacketBufferPool(preallocate: 4, maxBuffers: 16);
        var late = pool.Rent();
        var check = PoolReturns.OutstandingAfterAsync(pool, TimeSpan.FromSeconds(30));
        Assert.False(check.IsCompleted); // it waits for the buffer still out
        late.Return(); // as the BufferReclaimer returns a dead letter's buffers
        Assert.Equal(0, await check);
    }

    [Fact]
    public async Task A_buffer_that_never_comes_back_is_counted_at_the_bound()
    {
        var pool = new PacketBufferPool(preallocate: 4, maxBuffers: 16);
        var kept = pool.Rent();
        Assert.Equal(1, await PoolReturns.OutstandingAfterAsync(pool, TimeSpan.FromMilliseconds(50)));
        kept.Return();
        Assert.Equal(0, await PoolReturns.OutstandingAfterAsync(pool, TimeSpan.FromMilliseconds(50)));
    }

    [Fact]
    public async Task A_wall_clock_set_back_does_not_stretch_the_wait()
    {
        var pool = new PacketBufferPool(preallocate: 4, maxBuffers: 16);
        var kept = pool.Rent();
        var check = PoolReturns.OutstandingAfterAsync(pool, TimeSpan.FromMilliseconds(50), new ClockSetBackEveryRead());
        // Far more than the 50 ms bound: a wait bounded by the wall clock would never end.
        Assert.Same(check, await Task.WhenAny(check, Task.Delay(TimeSpan.FromSeconds(10))));
        Assert.Equal(1, await check);
        kept.Return();
    }

    /// <summary>The system's timers and timestamps, and a wall clock an hour earlier at every read (NTP stepping it back, say).</summary>
    private sealed class ClockSetBackEveryRead : TimeProvider
    {
        private DateTimeOffset _now = DateTimeOffset.UtcNow;

        public override DateTimeOffset GetUtcNow() => _now -= TimeSpan.FromHours(1);
    }
}
