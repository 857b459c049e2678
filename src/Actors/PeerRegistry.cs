using System.Collections.Concurrent;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors;

/// <summary>
/// Peer public key -> that peer's <see cref="PeerSlot"/> (its PeerConnection and current data path),
/// read by the TUN and socket reader threads and written only by the PeerSupervisor. Lookups are
/// lock-free and allocation-free.
/// </summary>
public sealed class PeerRegistry
{
    private readonly ConcurrentDictionary<WireGuardKey, PeerSlot> _peers = new();

    public bool TryGet(WireGuardKey key, out PeerSlot slot) => _peers.TryGetValue(key, out slot!);

    public int Count => _peers.Count;

    internal void Set(WireGuardKey key, PeerSlot slot) => _peers[key] = slot;

    /// <summary>Removes the entry only while it still names <paramref name="slot"/> (a newer one may have replaced it).</summary>
    internal bool Remove(WireGuardKey key, PeerSlot slot) =>
        _peers.TryRemove(new KeyValuePair<WireGuardKey, PeerSlot>(key, slot));
}
