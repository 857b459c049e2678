namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// How many packet buffers the peers of one <see cref="Device"/> may hold together while they wait
/// for a session (each up to <see cref="ProtocolConstants.MaxStagedPackets"/>, as wireguard-go).
/// The held packets live in the device's one pool, which the TUN and socket readers also read into:
/// a Gateway keeps the peers of Clients that went away, and packets still sent to them wait behind
/// handshakes nobody answers. Without a bound, 128 such peers (fewer on jumbo buffers) held every
/// buffer of a 16,384-buffer pool, the readers could read nothing, and no peer got a packet through
/// until the handshakes gave up 90 s later. With it, a quarter of the pool at most is held; past
/// that a peer holds a new packet only in place of its own oldest. (wireguard-go allocates its
/// staged packets and bounds nothing but each peer's queue.) Thread-safe: peers step on different threads.
/// </summary>
public sealed class StagedPacketBudget
{
    private int _held;

    public StagedPacketBudget(int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        Limit = limit;
    }

    /// <summary>For a pool of <paramref name="maxBuffers"/>: a quarter of it, at least one peer's full queue.</summary>
    public static StagedPacketBudget ForPool(int maxBuffers) =>
        new(Math.Max(ProtocolConstants.MaxStagedPackets, maxBuffers / 4));

    public int Limit { get; }

    /// <summary>Packets the device's peers hold now.</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>One more packet held, unless the budget is spent.</summary>
    public bool TryTake()
    {
        int held = Volatile.Read(ref _held);
        while (held < Limit)
        {
            int seen = Interlocked.CompareExchange(ref _held, held + 1, held);
            if (seen == held)
            {
                return true;
            }
            held = seen;
        }
        return false;
    }

    /// <summary>A packet put back where it was (a seal that failed): held again even beyond the limit.</summary>
    public void TakeBack() => Interlocked.Increment(ref _held);

    /// <summary>A held packet left the queue (sent, dropped, handed over).</summary>
    public void Give() => Interlocked.Decrement(ref _held);
}
