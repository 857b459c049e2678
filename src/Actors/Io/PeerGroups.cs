using Akka.Actor;
using Firezone.Actors.Actors.Batches;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Actors.Io;

/// <summary>
/// One read's packets grouped by peer (one batch per peer per read, or several in order when a
/// peer has more than a batch holds; STYLE.md rule 5), and how a
/// reader thread hands the groups on: it steps each peer's group itself (<see cref="PeerDataPath"/>:
/// one thread wake-up per crossing, and the least CPU), unless that peer has batches queued on the
/// actor path (<see cref="PeerSlot.HasBacklog"/>), its path is closed (a restart) or another thread
/// holds its lock for more than a moment; then the group goes to the peer's PeerConnection actor.
/// A peer moves back to the reader only once everything it queued on the actors has gone out, and
/// a group that goes to the actor after an earlier group of the same read was stepped here first
/// has the output flushed before it (the actor could otherwise send or write it first), so
/// packets of one flow are never reordered. A peer's actor path holds at most
/// <see cref="PeerSlot.MaxBacklogPackets"/> packets; a group beyond that is dropped and counted
/// (<see cref="PeerStatus.QueueFullDrops"/>).
///
/// Handing the other peers of a read to their actors, so that the thread pool steps them in
/// parallel, was measured and dropped. With 100 peers sending through a Gateway on two cores it gave
/// 0.39-0.63 of one peer's total in five of six runs, and 0.23-0.78 when done only for reads that
/// filled every buffer. Stepping every group here gave 1.06-1.3 in four of six runs (the others
/// 0.19-0.36: the figure is bimodal), and costs the fewest wake-ups. The price is one core per
/// direction for all peers together.
/// Owned by one device's reads: used by one thread at a time, under the device's gate in
/// BatchReaderThread (its own reader, or the other device's reader polling for a reply). Not thread-safe.
/// </summary>
internal sealed class PeerGroups<TBatch>(Func<TBatch> rent, PeerOutput output) where TBatch : PacketBatch
{
    // Reference equality on the slot; the dictionary is reused from read to read.
    private readonly Dictionary<PeerSlot, TBatch> _groups = new(ReferenceEqualityComparer.Instance);

    // Groups that filled a batch (a read larger than PacketBatch.Capacity, mostly from one peer), in
    // the order they filled: handed on before the peer's later group, so a flow keeps its order.
    private readonly List<KeyValuePair<PeerSlot, TBatch>> _full = [];

    // Peers of this flush whose full group this thread stepped itself: their results may still be
    // collected in the output when a later group of theirs has to go to their actor.
    private readonly HashSet<PeerSlot> _steppedHere = new(ReferenceEqualityComparer.Instance);

    /// <summary>Takes ownership of <paramref name="buffer"/> into <paramref name="slot"/>'s group.</summary>
    public void Add(PeerSlot slot, PacketBuffer buffer)
    {
        if (!_groups.TryGetValue(slot, out var batch) || batch.IsFull)
        {
            var fresh = rent(); // first: if renting throws, the full batch is still only in _groups
            if (batch is not null)
            {
                _full.Add(new(slot, batch));
            }
            batch = fresh;
            _groups[slot] = batch;
        }
        batch.Add(buffer);
    }

    /// <summary>Hands every group on (see the class comment), then sends and writes what this thread stepped.</summary>
    public void Flush(TimeSpan now)
    {
        for (int i = 0; i < _full.Count; i++)
        {
            var pair = _full[i];
            _full[i] = default; // handed on: never recycled here too if a later one throws
            if (HandOn(pair.Key, pair.Value, now))
            {
                _steppedHere.Add(pair.Key);
            }
        }
        _full.Clear();
        foreach (var pair in _groups)
        {
            // Removed before it is handed on (allowed during enumeration since .NET Core 3.0): a batch
            // already stepped or told must never be recycled here too if a later one throws.
            _groups.Remove(pair.Key);
            HandOn(pair.Key, pair.Value, now);
        }
        _steppedHere.Clear();
        output.Flush();
    }

    /// <summary>Steps <paramref name="batch"/> on this thread (true) or hands it to the peer's actor (false).</summary>
    private bool HandOn(PeerSlot slot, TBatch batch, TimeSpan now)
    {
        if (slot.HasBacklog || slot.DataPath is not { } path || !path.TryHandle(batch, now, output))
        {
            if (_steppedHere.Contains(slot))
            {
                // An earlier group of this peer was stepped here and its results may still wait in
                // the output; the actor could send or write this one first (the peer's lock was busy
                // for over a moment, or the path closed). Hand them on now, so the flow keeps its order.
                try
                {
                    output.Flush();
                }
                catch
                {
                    batch.Recycle(); // ours (taken out of the groups): the socket or device failed
                    throw;
                }
            }
            if (slot.BacklogPackets + batch.Count > PeerSlot.MaxBacklogPackets)
            {
                // The peer's actor path is full (a slow or stuck peer): drop rather than let it take
                // the shared pool's buffers from every other peer (wireguard-go drops the same way
                // when a peer's queue is full).
                slot.Counters.CountQueueFullDrops(batch.ReturnAll());
                batch.Recycle();
                return false;
            }
            Tell(slot, batch);
            return false;
        }
        return true;
    }

    /// <summary>Recycles any group not yet handed on, and the output (the thread is ending).</summary>
    public void Release()
    {
        foreach (var pair in _full)
        {
            pair.Value?.Recycle();
        }
        _full.Clear();
        foreach (var pair in _groups)
        {
            pair.Value.Recycle();
        }
        _groups.Clear();
        _steppedHere.Clear();
        output.Release();
    }

    private static void Tell(PeerSlot slot, TBatch batch)
    {
        slot.EnterBacklog(batch);
        slot.Connection.Tell(batch, ActorRefs.NoSender);
    }
}
