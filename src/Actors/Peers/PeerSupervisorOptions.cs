namespace Firezone.Actors.Actors.Peers;

/// <summary>How the PeerSupervisor treats faults and handshake load.</summary>
public sealed record PeerSupervisorOptions
{
    /// <summary>A peer that fails more than this many times within <see cref="FailureWindow"/> is stopped.</summary>
    public int MaxFailures { get; init; } = 3;

    public TimeSpan FailureWindow { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Above this many handshake initiations with a valid mac1 per second (a bad mac1 does not count) the device is "under load" and demands
    /// cookies (whitepaper section 5.3; wireguard-go's threshold is a queue 1/8 full, 512 messages).
    /// </summary>
    public int HandshakesPerSecondUnderLoad { get; init; } = 512;

    public static PeerSupervisorOptions Default { get; } = new();
}
