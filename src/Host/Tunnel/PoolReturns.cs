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
    public static async Task<int> OutstandingAfterAsync(PacketBufferPool pool, TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        while (pool.Outstanding != 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(Poll).ConfigureAwait(false);
        }
        return pool.Outstanding;
    }
}
