using Akka.Actor;
using Firezone.Actors.Actors.Batches;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Actors.Io;

/// <summary>
/// One read's packets grouped by peer (one batch per peer per read, STYLE.md rule 5), and how a
/// reader thread hands the groups on. One peer's group is stepped on the reader thread itself
/// (<see cref="PeerDataPath"/>: one thread wake-up per crossing, the lowest latency); every other
/// peer's group goes to its PeerConnection actor, so peers are decrypted and encrypted in parallel
/// on the thread pool and a busy peer does not hold up the others behind one thread. The group
/// stepped here is the largest one whose peer has no backlog on the actor path
/// (<see cref="PeerSlot.HasBacklog"/>): a peer moves back to the reader thread only once everything
/// it has queued on the actors has gone out, so packets of one flow are never reordered.
/// Owned by one reader thread; not thread-safe.
/// </summary>
internal sealed class PeerGroups<TBatch>(Func<TBatch> rent, PeerOutput output) where TBatch : PacketBatch
{
    // Reference equality on the slot; the dictionary is reused from read to read.
    private readonly Dictionary<PeerSlot, TBatch> _groups = new(ReferenceEqualityComparer.Instance);

    /// <summary>Takes ownership of <paramref name="buffer"/> into <paramref name="slot"/>'s group.</summary>
    public void Add(PeerSlot slot, PacketBuffer buffer)
    {
        if (!_groups.TryGetValue(slot, out var batch))
        {
            batch = rent();
            _groups.Add(slot, batch);
        }
        batch.Add(buffer);
    }

    /// <summary>Hands every group on (see the class comment), then sends and writes what this thread stepped.</summary>
    public void Flush(TimeSpan now)
    {
        PeerSlot? here = null;
        int largest = 0;
        foreach (var pair in _groups)
        {
            if (pair.Value.Count > largest && !pair.Key.HasBacklog && pair.Key.DataPath is not null)
            {
                here = pair.Key;
                largest = pair.Value.Count;
            }
        }
        foreach (var pair in _groups)
        {
            if (pair.Key == here)
            {
                continue;
            }
            // Removed before it is handed on (allowed during enumeration since .NET Core 3.0): a batch
            // already told must never be recycled here too if a later Tell throws.
            _groups.Remove(pair.Key);
            Tell(pair.Key, pair.Value);
        }
        // The others are told first, so the thread pool works on them while this thread steps its own.
        if (here is not null && _groups.Remove(here, out var mine))
        {
            if (here.DataPath is not { } path || !path.TryHandle(mine, now, output))
            {
                // Closed in the meantime (the peer restarts): its next instance takes it.
                Tell(here, mine);
            }
        }
        output.Flush();
    }

    /// <summary>Recycles any group not yet handed on, and the output (the thread is ending).</summary>
    public void Release()
    {
        foreach (var pair in _groups)
        {
            pair.Value.Recycle();
        }
        _groups.Clear();
        output.Release();
    }

    private static void Tell(PeerSlot slot, TBatch batch)
    {
        slot.EnterBacklog(batch);
        slot.Connection.Tell(batch, ActorRefs.NoSender);
    }
}
