using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// The sessions of one tunnel's peers, handed over to the next tunnel when the host rebuilds it
/// with the same static key (a jumbo MTU needs bigger packet buffers; see <see cref="PeerHandover"/>):
/// wireguard-go keeps its sessions through an MTU change, and so the rebuilt tunnel sends and
/// receives on them without a handshake, and a reply to a packet the old tunnel sent while it
/// stopped still opens. The host calls <see cref="Collect"/> before it stops the tunnel; each
/// stopping peer's path then hands its engine peer's sessions over (<see cref="Put"/>, under the
/// path's lock, so the old peer never seals with them again); the new tunnel's peers take theirs in
/// PreStart (<see cref="TryTake"/>). Not armed, a stopping peer's sessions are disposed with it (a
/// peer removed, the daemon stopping, a new private key). Thread-safe.
/// </summary>
public sealed class PeerHandovers : IDisposable
{
    private readonly Lock _gate = new();
    private Dictionary<WireGuardKey, PeerHandover>? _held;
    private bool _collecting;
    private bool _closed;

    /// <summary>From now on, peers whose paths close hand their sessions over instead of dropping them.</summary>
    public void Collect()
    {
        lock (_gate)
        {
            _collecting = !_closed;
        }
    }

    /// <summary>Whether a closing path should hand its sessions over.</summary>
    public bool IsCollecting
    {
        get
        {
            lock (_gate)
            {
                return _collecting;
            }
        }
    }

    /// <summary>Sessions held for the next tunnel.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _held?.Count ?? 0;
            }
        }
    }

    /// <summary>Keeps <paramref name="handover"/> for the next tunnel, or disposes it when not collecting.</summary>
    public void Put(PeerHandover handover)
    {
        ArgumentNullException.ThrowIfNull(handover);
        PeerHandover? replaced = null;
        lock (_gate)
        {
            if (_collecting)
            {
                var held = _held ??= new Dictionary<WireGuardKey, PeerHandover>();
                held.TryGetValue(handover.PublicKey, out replaced);
                held[handover.PublicKey] = handover;
                handover = null!;
            }
        }
        replaced?.Dispose(); // one instance per key: an earlier one cannot be newer
        handover?.Dispose();
    }

    /// <summary>The sessions of <paramref name="key"/>'s peer, once; false when none were handed over (or after <see cref="Dispose"/>).</summary>
    public bool TryTake(WireGuardKey key, out PeerHandover handover)
    {
        lock (_gate)
        {
            if (_held is { } held && held.Remove(key, out handover!))
            {
                return true;
            }
        }
        handover = null!;
        return false;
    }

    /// <summary>Before the new tunnel reads: see <see cref="PeerHandover.ReserveIndices"/>, for every session held.</summary>
    public void ReserveIndices(Engine.Routing.IndexTable table)
    {
        lock (_gate)
        {
            if (_held is { } held)
            {
                foreach (var handover in held.Values)
                {
                    handover.ReserveIndices(table);
                }
            }
        }
    }

    /// <summary>
    /// Once the rebuilt tunnel has its peers: disposes the sessions held for every key that
    /// <paramref name="configured"/> says it has no peer for (a peer removed meanwhile), which no peer
    /// will take, freeing the receiver indices <see cref="ReserveIndices"/> claimed for them in its
    /// table (they stayed claimed for the tunnel's lifetime). Returns how many were disposed.
    /// </summary>
    public int DisposeUnconfigured(Func<WireGuardKey, bool> configured)
    {
        ArgumentNullException.ThrowIfNull(configured);
        List<PeerHandover>? gone = null;
        lock (_gate)
        {
            if (_held is { } held)
            {
                foreach (var (key, handover) in held)
                {
                    if (!configured(key))
                    {
                        (gone ??= []).Add(handover);
                    }
                }
                if (gone is not null)
                {
                    foreach (var handover in gone)
                    {
                        held.Remove(handover.PublicKey);
                    }
                }
            }
        }
        if (gone is null)
        {
            return 0;
        }
        foreach (var handover in gone)
        {
            handover.Dispose();
        }
        return gone.Count;
    }

    /// <summary>Stops collecting and disposes (zeroes) every session not taken.</summary>
    public void Dispose()
    {
        Dictionary<WireGuardKey, PeerHandover>? held;
        lock (_gate)
        {
            _closed = true;
            _collecting = false;
            held = _held;
            _held = null;
        }
        if (held is not null)
        {
            foreach (var handover in held.Values)
            {
                handover.Dispose();
            }
        }
    }
}
