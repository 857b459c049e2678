using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// The buffers of a stopped tunnel come back a little after its actors have stopped: batches told
/// to an actor that stopped first reach the BufferReclaimer as dead letters, which returns them on
/// its own time (within about 300 ms under traffic, a concurrency review measured). A leak check
/// waits for them before it counts, or it warns of a leak that is not there.
/// </summary>
internal static class PoolReturns
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(10);

    /// <summary>The buffers of <paramref name="pool"/> still out once all are back or <paramref name="bound"/> has passed.</summary>
    /// <param name="time">The monotonic timestamp bounds the wait, not the wall clock: a clock set back
    /// (NTP, an operator) while a buffer stays out would hold a stop or a rebuild for that long.</param>
    public static async Task<int> OutstandingAfterAsync(PacketBufferPool pool, TimeSpan bound, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        long start = time.GetTimestamp();
        while (pool.Outstanding != 0 && time.GetElapsedTime(start) < bound)
        {
            await Task.Delay(Poll, time).ConfigureAwait(false);
        }
        return pool.Outstanding;
    }
}
