namespace Firezone.Actors.Engine.WireGuard;

/// <summary>The device-level verdict on an incoming handshake message's MACs (whitepaper section 5.3).</summary>
public enum HandshakeAdmission : byte
{
    /// <summary>mac1 valid (and mac2 when under load): process it.</summary>
    Accept = 0,

    /// <summary>mac1 invalid or the message malformed: drop silently.</summary>
    Reject,

    /// <summary>Under load and mac2 missing or stale: a cookie reply was produced instead; drop the message.</summary>
    SendCookie,

    /// <summary>Under load and mac2 missing or stale, but no buffer was free for the cookie reply (or the caller had no room to send one): drop the message.</summary>
    Overloaded,

    /// <summary>Under load with a valid mac2, but its source address sent more than its share (<see cref="HandshakeRateLimiter"/>): drop the message.</summary>
    RateLimited,
}
