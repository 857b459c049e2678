namespace Firezone.Actors.Actors.Tunnel;

/// <summary>
/// Drops that belong to no peer, and the tunnel's sends and writes, counted by the reader threads,
/// the I/O actors and the supervisor (so several writers: Interlocked, once per batch at most for
/// the traffic counts). Read at any time for status and metrics.
/// </summary>
public sealed class TunnelCounters
{
    internal long TunPacketsNoRoute;
    internal long TunPacketsNoRouteMulticast;
    internal long TunPacketsInvalid;
    internal long DatagramsInvalid;
    internal long DatagramsUnknownReceiver;
    internal long HandshakesRejected;
    internal long HandshakesRateLimited;
    internal long HandshakesUnknownPeer;
    internal long CookieRepliesSent;
    internal long PoolExhausted;
    internal long DatagramsSent;
    internal long DatagramsNotSent;
    internal long TunPacketsWritten;
    // Initiations told to the PeerSupervisor and not yet taken up by it (SocketIO adds, it subtracts).
    internal long HandshakesQueued;
    internal long HandshakesQueueFull;
    // Cookie replies told to SocketIO and not yet sent by it (the PeerSupervisor adds, SocketIO subtracts).
    internal long CookieRepliesQueued;

    /// <summary>After one SendBatch: how many datagrams went out and how many the socket refused.</summary>
    internal void CountSent(int sent, int notSent)
    {
        Interlocked.Add(ref DatagramsSent, sent);
        if (notSent > 0)
        {
            Interlocked.Add(ref DatagramsNotSent, notSent);
        }
    }

    /// <summary>After one WriteBatch to the TUN device.</summary>
    internal void CountWritten(int packets) => Interlocked.Add(ref TunPacketsWritten, packets);

    // Reader threads (TUN reader, UDP receiver) started and not yet ended.
    internal int ReaderThreads;

    /// <summary>
    /// The tunnel's reader threads that have not ended: nonzero after the tunnel stopped when a join
    /// gave up (<see cref="Tunnels.ReaderStopBound"/>), so its TUN device and socket must not be
    /// reused or closed under it yet.
    /// </summary>
    public int ReaderThreadsRunning => Volatile.Read(ref ReaderThreads);

    /// <summary>TUN packets to a unicast address in no peer's allowed IPs (whitepaper section 2).</summary>
    public long TunPacketsNoRouteCount => Volatile.Read(ref TunPacketsNoRoute);

    /// <summary>TUN packets to a multicast or broadcast address in no peer's allowed IPs (the kernel's own, on every interface).</summary>
    public long TunPacketsNoRouteMulticastCount => Volatile.Read(ref TunPacketsNoRouteMulticast);

    /// <summary>TUN packets that are not valid IPv4/IPv6.</summary>
    public long TunPacketsInvalidCount => Volatile.Read(ref TunPacketsInvalid);

    /// <summary>Datagrams that are no WireGuard message (type or size wrong, section 5.4).</summary>
    public long DatagramsInvalidCount => Volatile.Read(ref DatagramsInvalid);

    /// <summary>Responses, cookie replies and transport data for a receiver index nobody owns.</summary>
    public long DatagramsUnknownReceiverCount => Volatile.Read(ref DatagramsUnknownReceiver);

    /// <summary>Initiations with a bad mac1/mac2 (section 5.3).</summary>
    public long HandshakesRejectedCount => Volatile.Read(ref HandshakesRejected);

    /// <summary>Initiations under load with a valid mac2 from a source that sent more than its share (20 a second, bursts of 5).</summary>
    public long HandshakesRateLimitedCount => Volatile.Read(ref HandshakesRateLimited);

    /// <summary>Initiations that do not decrypt or come from a key that is not a configured peer.</summary>
    public long HandshakesUnknownPeerCount => Volatile.Read(ref HandshakesUnknownPeer);

    public long CookieRepliesSentCount => Volatile.Read(ref CookieRepliesSent);

    /// <summary>Times a receive thread found the buffer pool empty and had to wait.</summary>
    public long PoolExhaustedCount => Volatile.Read(ref PoolExhausted);

    /// <summary>Datagrams handed to the kernel (by the reader threads and SocketIO together).</summary>
    public long DatagramsSentCount => Volatile.Read(ref DatagramsSent);

    /// <summary>Datagrams the socket refused or could not send (full buffer after one wait, wrong family).</summary>
    public long DatagramsNotSentCount => Volatile.Read(ref DatagramsNotSent);

    /// <summary>Decrypted packets given to the TUN device (by the socket reader thread and the TunWriter together).</summary>
    public long TunPacketsWrittenCount => Volatile.Read(ref TunPacketsWritten);

    // The devices count their own drops below the packet path; read from them when asked.
    internal Firezone.Actors.Native.ITunDevice? Tun { get; set; }

    internal Firezone.Actors.Native.IUdpBatchSocket? Socket { get; set; }

    /// <summary>Initiations dropped because more were waiting for the PeerSupervisor than its queue holds (a flood).</summary>
    public long HandshakesQueueFullCount => Volatile.Read(ref HandshakesQueueFull);

    /// <summary>TUN reads dropped by the device (malformed offload headers, packets longer than the buffers).</summary>
    public long TunReadDroppedCount => Tun?.ReadDropped ?? 0;

    /// <summary>Datagrams dropped on receive for want of a large enough buffer (more than 64 jumbo datagrams at once, or no UDP GRO).</summary>
    public long DatagramsTooLargeCount => Socket?.ReceiveTruncated ?? 0;

    /// <summary>Reads dropped on receive because the kernel cut their control data (MSG_CTRUNC: ECN codepoint or GRO segment size missing).</summary>
    public long DatagramsControlTruncatedCount => Socket?.ReceiveControlTruncated ?? 0;

    /// <summary>Socket reads the kernel refused with an errno that leaves the socket usable (ENOMEM...), each followed by a short pause; the datagrams stay queued.</summary>
    public long DatagramsReceiveErrorsCount => Socket?.ReceiveErrors ?? 0;

    /// <summary>Send messages whose source address (the one the peer contacted) was gone from the host, sent again from the kernel's choice.</summary>
    public long DatagramsSourceDroppedCount => Socket?.SourcesDropped ?? 0;

    /// <summary>GSO sends the kernel refused (a path MTU below the segment: GSO to that destination then pauses for a second; or no offload on the route).</summary>
    public long GsoRefusedCount => Socket?.GsoRefused ?? 0;
}
