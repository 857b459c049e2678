namespace Firezone.Actors.Engine.WireGuard;

/// <summary>What <see cref="Peer.HandleHandshakeMessage"/> did with an initiation, response or cookie reply.</summary>
public enum HandshakeResult : byte
{
    /// <summary>Consumed: a response may now be waiting in <see cref="Peer.PollTransmit"/>, or a session was established.</summary>
    Accepted = 0,

    /// <summary>Malformed, failed decryption, or not meant for this peer.</summary>
    Rejected,

    /// <summary>An initiation whose TAI64N timestamp is not newer than the last one accepted (replay, whitepaper section 5.1).</summary>
    ReplayedTimestamp,

    /// <summary>A response or cookie reply for a handshake this peer no longer has in flight.</summary>
    Unexpected,
}
