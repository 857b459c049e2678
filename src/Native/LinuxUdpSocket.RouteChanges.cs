using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native;

/// <summary>
/// Local addresses after a change of the host's routes. A peer sends from the local address its
/// last datagram arrived at (the sticky source, so a multi-homed host answers from the address it
/// was contacted at). When the routes change, that address may still be the host's but no longer
/// the way to the peer: a laptop whose default route moved from Wi-Fi to Ethernet while Wi-Fi keeps
/// its address sent from the Wi-Fi address out of Ethernet, which the network's source filter
/// (BCP 38, rp_filter) drops, and the other side's initiations through Wi-Fi kept setting that
/// source again (the roaming review: no recovery in 110 s; wireguard-go 0.06 s). The kernel's
/// WireGuard checks on each send that the route leaves by the interface the source was learned on,
/// wireguard-go asks for each peer's route at each route change (device/sticky_linux.go). Here,
/// without a route lookup per peer: after <see cref="RoutesChanged"/>, a local address is sent from
/// only once a datagram has arrived at it since the change; until then the kernel picks the source
/// by its routes, and the peer, seeing datagrams from the new address, roams to it (whitepaper
/// section 6.5). A multi-homed host under traffic confirms its addresses with the next datagram.
/// </summary>
public sealed unsafe partial class LinuxUdpSocket
{
    /// <summary>How many confirmed local addresses are kept (a host's addresses that peers contact; more only after many changes).</summary>
    private const int MaxConfirmedSources = 16;

    // Route changes announced (RoutesChanged); 0 until the first, when every source is used as before.
    private int _routeGeneration;

    // The local addresses a datagram arrived at since the latest change (with the change's number),
    // replaced whole on the reader's thread when an address is first confirmed after a change, read
    // by the sending threads.
    private ConfirmedSource[] _confirmedSources = [];
    private readonly Lock _confirmLock = new();

    private readonly record struct ConfirmedSource(UdpEndpoint Address, int Generation);

    /// <summary>Sends with a local address go from the kernel's choice after this call, until a datagram arrives at that address; thread-safe.</summary>
    public void RoutesChanged() => Interlocked.Increment(ref _routeGeneration);

    /// <summary>Whether <paramref name="source"/> may be sent from: no route change yet, or a datagram arrived at it since the latest.</summary>
    private bool IsConfirmed(UdpEndpoint source)
    {
        int generation = Volatile.Read(ref _routeGeneration);
        if (generation == 0 || source.IsNone)
        {
            return true;
        }
        foreach (var confirmed in Volatile.Read(ref _confirmedSources))
        {
            if (confirmed.Address == source)
            {
                return confirmed.Generation == generation;
            }
        }
        return false;
    }

    /// <summary>A datagram arrived at <paramref name="local"/>: it may be sent from again (allocates only the first time after a change).</summary>
    private void Confirm(UdpEndpoint local)
    {
        int generation = Volatile.Read(ref _routeGeneration);
        if (generation == 0 || local.IsNone)
        {
            return;
        }
        foreach (var confirmed in Volatile.Read(ref _confirmedSources))
        {
            if (confirmed.Address == local && confirmed.Generation == generation)
            {
                return;
            }
        }
        lock (_confirmLock)
        {
            var kept = new List<ConfirmedSource>(MaxConfirmedSources) { new(local, generation) };
            foreach (var confirmed in _confirmedSources)
            {
                if (confirmed.Generation == generation && confirmed.Address != local && kept.Count < MaxConfirmedSources)
                {
                    kept.Add(confirmed);
                }
            }
            Volatile.Write(ref _confirmedSources, kept.ToArray());
        }
    }
}
