using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Peers;

// Control messages (the wg UAPI maps onto these). Send them to the TunnelActor (or the
// PeerSupervisor directly); each is answered to the sender.

/// <summary>Adds a peer, or updates it in place (session kept). Answered with <see cref="PeerConfigured"/>.</summary>
public sealed record AddOrUpdatePeer(PeerConfig Config);

/// <summary>Answer to <see cref="AddOrUpdatePeer"/>: <paramref name="Created"/> is false for an update.</summary>
public sealed record PeerConfigured(WireGuardKey PublicKey, bool Created, bool Unchanged = false);

/// <summary>Removes a peer (its allowed IPs, its session). Answered with <see cref="PeerRemoved"/>.</summary>
public sealed record RemovePeer(WireGuardKey PublicKey);

public sealed record PeerRemoved(WireGuardKey PublicKey, bool Existed);

/// <summary>Removes every peer (UAPI replace_peers=true). Answered with <see cref="AllPeersRemoved"/>.</summary>
public sealed class RemoveAllPeers
{
    public static readonly RemoveAllPeers Instance = new();
    private RemoveAllPeers() { }
}

public sealed record AllPeersRemoved(int Count);

/// <summary>
/// One UAPI <c>set=1</c> transaction's peer changes as one message (wg addconf of 10,000 peers is
/// one round trip, not 10,000): first every peer when <paramref name="RemoveAll"/>, else each key in
/// <paramref name="Remove"/>, then each of <paramref name="Upsert"/> as <see cref="AddOrUpdatePeer"/>.
/// Answered once with <see cref="PeerChangesApplied"/>. A peer of <paramref name="Upsert"/> whose key is
/// in <paramref name="HandshakeAtStart"/> and that is added (not updated) handshakes at once: it had a
/// session in the tunnel this one replaces. Any other new peer waits for traffic. A running peer of
/// <paramref name="Upsert"/> whose key is in <paramref name="EndpointNamed"/> goes to its configured
/// endpoint even when that did not change (the request named it; see <see cref="UpdatePeerConfig"/>).
/// <paramref name="CarriedOver"/>: the peers of a tunnel this one replaces (a new private key, port
/// or buffer size), not a change of the configuration; the log says so.
/// </summary>
public sealed record ApplyPeerChanges(bool RemoveAll, IReadOnlyList<WireGuardKey> Remove, IReadOnlyList<PeerConfig> Upsert,
    IReadOnlySet<WireGuardKey>? HandshakeAtStart = null, IReadOnlySet<WireGuardKey>? EndpointNamed = null, bool CarriedOver = false);

/// <remarks><paramref name="Unchanged"/>: peers re-sent with the settings they had (wg syncconf sends every peer of the file); they are applied again all the same (an endpoint given again replaces a roamed one, as in wireguard-go).</remarks>
public sealed record PeerChangesApplied(int Created, int Updated, int Removed, int Unchanged = 0);

/// <summary>Ask for <see cref="DeviceStatus"/>.</summary>
public sealed class GetDeviceStatus
{
    public static readonly GetDeviceStatus Instance = new();
    private GetDeviceStatus() { }
}

/// <summary>
/// `wg show` for the whole interface: the device plus one <see cref="PeerStatus"/> per peer, and
/// device-level drops. <paramref name="Stopped"/>: why supervision stopped a configured peer that has
/// no connection now (too many failures, or a configuration its connection rejected), by key, until
/// the peer is configured or removed again.
/// </summary>
public sealed record DeviceStatus(
    WireGuardKey PublicKey,
    int ListenPort,
    IReadOnlyList<PeerStatus> Peers,
    DeviceDropCounts Drops,
    IReadOnlyDictionary<WireGuardKey, string>? Stopped = null);

/// <summary>A snapshot of <see cref="TunnelCounters"/>.</summary>
public sealed record DeviceDropCounts(
    long TunPacketsNoRoute,
    long TunPacketsInvalid,
    long DatagramsInvalid,
    long DatagramsUnknownReceiver,
    long HandshakesRejected,
    long HandshakesUnknownPeer,
    long CookieRepliesSent,
    long PoolExhausted,
    long HandshakesRateLimited,
    long HandshakesQueueFull = 0,
    long TunPacketsNoRouteMulticast = 0)
{
    /// <summary>All zero: a tunnel that has dropped nothing (and what a reply without the counts stands for).</summary>
    public static readonly DeviceDropCounts None = new(0, 0, 0, 0, 0, 0, 0, 0, 0);

    public static DeviceDropCounts From(TunnelCounters c) => new(
        c.TunPacketsNoRouteCount, c.TunPacketsInvalidCount, c.DatagramsInvalidCount, c.DatagramsUnknownReceiverCount,
        c.HandshakesRejectedCount, c.HandshakesUnknownPeerCount, c.CookieRepliesSentCount, c.PoolExhaustedCount,
        c.HandshakesRateLimitedCount, c.HandshakesQueueFullCount, c.TunPacketsNoRouteMulticastCount);
}
