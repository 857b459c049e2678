using System.Collections.Concurrent;
using Akka.Actor;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors;

/// <summary>
/// Peer public key -> that peer's PeerConnection, read by the TUN and socket receive threads and
/// written only by the PeerSupervisor. Lookups are lock-free and allocation-free.
/// </summary>
public sealed class PeerRegistry
{
    private readonly ConcurrentDictionary<WireGuardKey, IActorRef> _peers = new();

    public bool TryGet(WireGuardKey key, out IActorRef connection) => _peers.TryGetValue(key, out connection!);

    public int Count => _peers.Count;

    internal void Set(WireGuardKey key, IActorRef connection) => _peers[key] = connection;

    /// <summary>Removes the entry only while it still names <paramref name="connection"/> (a newer one may have replaced it).</summary>
    internal bool Remove(WireGuardKey key, IActorRef connection) =>
        _peers.TryRemove(new KeyValuePair<WireGuardKey, IActorRef>(key, connection));
}
