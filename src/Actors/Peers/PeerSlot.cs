using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// What survives a PeerConnection restart: the latest configuration (written by the supervisor on
/// AddOrUpdatePeer, read by each fresh instance in PreStart) and the cumulative counters.
/// The engine state itself does not survive: a restarted peer starts with a fresh handshake; only the
/// initiation replay protection (<see cref="ReplayState"/>) carries over, or a replayed old initiation
/// would be accepted by the fresh instance (whitepaper section 5.1).
/// </summary>
public sealed class PeerSlot
{
    private volatile PeerConfig _config;

    public PeerSlot(PeerConfig config)
    {
        _config = config;
        Key = config.PublicKey;
        KeyBase64 = config.PublicKey.ToBase64();
    }

    public WireGuardKey Key { get; }

    /// <summary>Cached for logs and metric tags (a public key, fine to show).</summary>
    public string KeyBase64 { get; }

    public PeerConfig Config
    {
        get => _config;
        internal set => _config = value;
    }

    public PeerCounters Counters { get; } = new();

    /// <summary>Greatest accepted TAI64N timestamp and last initiation consumption, across restarts.</summary>
    public HandshakeReplayState ReplayState { get; } = new();
}
