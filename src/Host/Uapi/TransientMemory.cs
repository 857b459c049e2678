namespace Firezone.Actors.Host.Uapi;

/// <summary>How <see cref="TransientMemory"/> hands memory back; a larger value includes the smaller.</summary>
internal enum MemoryReturn
{
    None = 0,

    /// <summary>
    /// A background full collection after a get of thousands of peers: it frees the status snapshot
    /// while the packet path runs on (its pauses are under a millisecond), but keeps part of the freed
    /// space committed. A get is what a monitoring agent polls (a Prometheus exporter every 15 s), so
    /// it must not stop the packet path: a compacting collection of a 10,000-peer heap stopped every
    /// thread for 25 to 52 ms, more than the socket's 2 MiB receive queue lasts at 1 Gbit/s.
    /// </summary>
    Background = 1,

    /// <summary>
    /// A blocking, compacting, decommitting collection after a set of thousands of lines (`wg
    /// addconf`, `wg syncconf`): a configuration change is rare, and afterwards the daemon's resident
    /// memory is what its peers need, not the peak of parsing them (the idle-peer figure).
    /// </summary>
    Compacting = 2,
}

/// <summary>
/// Hands back what a large UAPI request left behind, <see cref="Delay"/> after it (the peers' actors
/// start after a set is answered, and compacting before they have built their state would leave it
/// interleaved with garbage). Requests within the delay share one collection, of the strongest kind
/// asked for.
/// </summary>
internal sealed class TransientMemory(Action<MemoryReturn> collect, CancellationToken stopping, TimeSpan delay = default)
{
    public static readonly TimeSpan Delay = TimeSpan.FromMilliseconds(500);

    private readonly Action<MemoryReturn> _collect = collect;

    /// <summary><see cref="Delay"/>, or another a test gives (a longer one, so that its margins hold on a loaded machine).</summary>
    private readonly TimeSpan _delay = delay > TimeSpan.Zero ? delay : Delay;
    private int _pending;
    private long _compactingDueAt; // Environment.TickCount64 (ms): the earliest a compaction may run

    public static void Collect(MemoryReturn kind)
    {
        switch (kind)
        {
            case MemoryReturn.Compacting:
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                break;
            case MemoryReturn.Background:
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: false);
                break;
        }
    }

    public void Request(MemoryReturn kind)
    {
        if (kind == MemoryReturn.Compacting)
        {
            // A compaction waits the whole delay after its own request, also when it raises a
            // background collection a get scheduled earlier (that one's delay may end at once).
            Volatile.Write(ref _compactingDueAt, Environment.TickCount64 + (long)_delay.TotalMilliseconds);
        }
        Raise(kind, _delay);
    }

    private void Raise(MemoryReturn kind, TimeSpan delay)
    {
        int seen;
        do
        {
            seen = Volatile.Read(ref _pending);
            if (seen >= (int)kind)
            {
                return; // one at least as strong is already due
            }
        }
        while (Interlocked.CompareExchange(ref _pending, (int)kind, seen) != seen);
        if (seen != (int)MemoryReturn.None)
        {
            return; // raised the one already scheduled, which reads the kind when it runs
        }
        _ = Task.Delay(delay, stopping).ContinueWith(
            static (_, state) => ((TransientMemory)state!).Due(),
            this, CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
    }

    private void Due()
    {
        var kind = (MemoryReturn)Interlocked.Exchange(ref _pending, (int)MemoryReturn.None);
        long early = Volatile.Read(ref _compactingDueAt) - Environment.TickCount64;
        if (kind == MemoryReturn.Compacting && early > 0)
        {
            Raise(kind, TimeSpan.FromMilliseconds(early)); // raised from a get's collection: not due yet
            return;
        }
        _collect(kind);
    }
}
