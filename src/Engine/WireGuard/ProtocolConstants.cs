namespace Firezone.Actors.Engine.WireGuard;

/// <summary>The timer and counter constants of whitepaper section 6.1 (names as there), plus the few
/// implementation constants wireguard-go and the kernel agree on.</summary>
public static class ProtocolConstants
{
    public const ulong RekeyAfterMessages = 1UL << 60;

    /// <summary>2^64 - 2^13 - 1.</summary>
    public const ulong RejectAfterMessages = ulong.MaxValue - (1UL << 13);

    public static readonly TimeSpan RekeyAfterTime = TimeSpan.FromSeconds(120);
    public static readonly TimeSpan RejectAfterTime = TimeSpan.FromSeconds(180);
    public static readonly TimeSpan RekeyAttemptTime = TimeSpan.FromSeconds(90);
    public static readonly TimeSpan RekeyTimeout = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan KeepaliveTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Retransmissions before giving up: Rekey-Attempt-Time / Rekey-Timeout (section 6.4).</summary>
    public const int MaxTimerHandshakes = 90 / 5;

    /// <summary>Handshake timers add a random 0..333 ms (section 6.1: "jitter").</summary>
    public const int RekeyTimeoutJitterMaxMilliseconds = 334;

    /// <summary>Cookie secrets and received cookies live two minutes (section 5.4.7).</summary>
    public static readonly TimeSpan CookieRefreshTime = TimeSpan.FromSeconds(120);

    /// <summary>At most 50 initiations per second from one peer are consumed (flood protection, as in wireguard-go).</summary>
    public static readonly TimeSpan HandshakeInitiationRate = TimeSpan.FromMilliseconds(20);

    public const int PaddingMultiple = 16;

    /// <summary>Packets held while no session exists (wireguard-go's MaxStagedPackets).</summary>
    public const int MaxStagedPackets = 128;
}
