namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// What one <see cref="Peer"/> did and refused, so every rejected datagram is counted (nothing is
/// dropped silently and nothing throws). Written only by the peer's single owner; 64-bit reads are
/// atomic, so another thread may read them for statistics.
/// </summary>
public sealed class PeerCounters
{
    /// <summary>Initiations sent (first attempts and retransmissions).</summary>
    public long HandshakeInitiationsSent { get; internal set; }

    /// <summary>Responses sent to a valid initiation.</summary>
    public long HandshakeResponsesSent { get; internal set; }

    /// <summary>Sessions confirmed: initiator on a valid response, responder on the first transport message with the new keypair.</summary>
    public long HandshakesCompleted { get; internal set; }

    /// <summary>Handshake retransmission stopped after Rekey-Attempt-Time (section 6.4).</summary>
    public long HandshakeGiveUps { get; internal set; }

    /// <summary>Handshake messages that failed to decrypt, carried another peer's static key, or hit a zero DH result.</summary>
    public long HandshakeRejections { get; internal set; }

    /// <summary>Initiations whose TAI64N was not newer than the last accepted one (section 5.1).</summary>
    public long ReplayedTimestamps { get; internal set; }

    /// <summary>Initiations arriving faster than 50 per second (flood protection).</summary>
    public long HandshakeFloods { get; internal set; }

    /// <summary>Responses or cookie replies for a handshake no longer in flight.</summary>
    public long UnexpectedMessages { get; internal set; }

    /// <summary>Cookie replies accepted (their cookie is now used for mac2).</summary>
    public long CookiesReceived { get; internal set; }

    /// <summary>Transport messages whose AEAD tag did not verify.</summary>
    public long AuthenticationFailures { get; internal set; }

    /// <summary>Transport messages with a counter already seen, too old for the window, or past Reject-After-Messages.</summary>
    public long ReplayRejections { get; internal set; }

    /// <summary>Transport messages for an unknown or expired receiver index.</summary>
    public long NoKeypairRejections { get; internal set; }

    /// <summary>Datagrams of the wrong size or type, and authenticated payloads that are not a valid IP packet.</summary>
    public long MalformedRejections { get; internal set; }

    /// <summary>Authenticated packets whose inner source is not in this peer's allowed IPs.</summary>
    public long SourceNotAllowedRejections { get; internal set; }

    public long KeepalivesSent { get; internal set; }

    public long KeepalivesReceived { get; internal set; }

    /// <summary>Outbound packets refused (too large for the buffer, or empty).</summary>
    public long OutboundDropped { get; internal set; }

    /// <summary>Staged packets dropped: the oldest when the queue was full, or all when the handshake gave up or the keys were zeroed.</summary>
    public long StagedDropped { get; internal set; }

    /// <summary>Datagrams not produced because the buffer pool was exhausted.</summary>
    public long PoolExhausted { get; internal set; }
}
