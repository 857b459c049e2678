using DeviceDropCounts = Firezone.Actors.Actors.Peers.DeviceDropCounts;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Control;

/// <summary>A snapshot of the device, what the UAPI <c>get=1</c> reports.</summary>
public sealed record DeviceStatus
{
    /// <summary>Null when no private key is set.</summary>
    public WireGuardKey? PrivateKey { get; init; }

    /// <summary>Derived from <see cref="PrivateKey"/>; null when it is unset.</summary>
    public WireGuardKey? PublicKey { get; init; }

    /// <summary>The port the socket is bound to (the chosen one when 0 was asked for); 0 when not bound.</summary>
    public ushort ListenPort { get; init; }

    public uint Fwmark { get; init; }

    public IReadOnlyList<PeerStatus> Peers { get; init; } = [];

    /// <summary>
    /// Packet buffers leased from the pool right now (held by the reader threads, in flight between
    /// actors, or queued in peers); null when unknown. Steady after traffic stops, so a leak shows
    /// as growth across idle moments.
    /// </summary>
    public int? BuffersOutstanding { get; init; }

    /// <summary>
    /// What the running tunnel dropped before any peer saw it (datagrams that are no WireGuard
    /// message or for no session, initiations refused, packets to no peer's allowed IPs) and the
    /// cookie replies it sent, since it started (the link came up, or a new key or port rebuilt it);
    /// null when no tunnel runs or the reply did not say.
    /// </summary>
    public DeviceDropCounts? Drops { get; init; }
}
