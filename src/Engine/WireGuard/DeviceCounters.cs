namespace Firezone.Actors.Engine.WireGuard;

/// <summary>Device-level rejection counts (thread-safe: updated with <see cref="Interlocked"/>).</summary>
public sealed class DeviceCounters
{
    internal long Mac1FailuresValue;
    internal long CookieRepliesSentValue;
    internal long MalformedValue;
    internal long RateLimitedValue;

    /// <summary>Initiations and responses whose mac1 did not verify (dropped silently, section 5.4.4).</summary>
    public long Mac1Failures => Interlocked.Read(ref Mac1FailuresValue);

    /// <summary>Cookie replies produced because the device was under load and mac2 was missing or stale.</summary>
    public long CookieRepliesSent => Interlocked.Read(ref CookieRepliesSentValue);

    /// <summary>Datagrams handed to <see cref="Device.AdmitHandshake"/> that are no handshake message.</summary>
    public long Malformed => Interlocked.Read(ref MalformedValue);

    /// <summary>Handshake messages under load with a valid mac2 dropped because their source sent more than its share (<see cref="HandshakeRateLimiter"/>).</summary>
    public long RateLimited => Interlocked.Read(ref RateLimitedValue);
}
