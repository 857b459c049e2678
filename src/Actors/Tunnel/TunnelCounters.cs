namespace Firezone.Actors.Actors.Tunnel;

/// <summary>
/// Drops that belong to no peer, counted by the receive threads and the supervisor (so several
/// writers: Interlocked). Read at any time for status and metrics.
/// </summary>
public sealed class TunnelCounters
{
    internal long TunPacketsNoRoute;
    internal long TunPacketsInvalid;
    internal long DatagramsInvalid;
    internal long DatagramsUnknownReceiver;
    internal long HandshakesRejected;
    internal long HandshakesUnknownPeer;
    internal long CookieRepliesSent;
    internal long PoolExhausted;

    /// <summary>TUN packets whose destination is in no peer's allowed IPs (whitepaper section 2).</summary>
    public long TunPacketsNoRouteCount => Volatile.Read(ref TunPacketsNoRoute);

    /// <summary>TUN packets that are not valid IPv4/IPv6.</summary>
    public long TunPacketsInvalidCount => Volatile.Read(ref TunPacketsInvalid);

    /// <summary>Datagrams that are no WireGuard message (type or size wrong, section 5.4).</summary>
    public long DatagramsInvalidCount => Volatile.Read(ref DatagramsInvalid);

    /// <summary>Responses, cookie replies and transport data for a receiver index nobody owns.</summary>
    public long DatagramsUnknownReceiverCount => Volatile.Read(ref DatagramsUnknownReceiver);

    /// <summary>Initiations with a bad mac1/mac2 (section 5.3).</summary>
    public long HandshakesRejectedCount => Volatile.Read(ref HandshakesRejected);

    /// <summary>Initiations that do not decrypt or come from a key that is not a configured peer.</summary>
    public long HandshakesUnknownPeerCount => Volatile.Read(ref HandshakesUnknownPeer);

    public long CookieRepliesSentCount => Volatile.Read(ref CookieRepliesSent);

    /// <summary>Times a receive thread found the buffer pool empty and had to wait.</summary>
    public long PoolExhaustedCount => Volatile.Read(ref PoolExhausted);
}
