using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Control;

/// <summary>One peer's configuration and live state.</summary>
public sealed record PeerStatus
{
    public required PeerConfig Config { get; init; }

    /// <summary>The endpoint in use, which roaming (whitepaper section 6.5) may have changed from the configured one.</summary>
    public UdpEndpoint Endpoint { get; init; }

    /// <summary>When the last handshake completed; null if never.</summary>
    public DateTimeOffset? LastHandshake { get; init; }

    public ulong RxBytes { get; init; }

    public ulong TxBytes { get; init; }

    public EcnCounters Ecn { get; init; }

    /// <summary>What was dropped or refused for this peer (<c>fz_get</c> and <c>firezone-tunnel show</c> only).</summary>
    public PeerDropCounts Drops { get; init; }

    /// <summary>
    /// Why supervision stopped the peer (too many failures, or a configuration its connection
    /// rejected); null while it runs. A stopped peer has no session and its allowed IPs route nowhere
    /// until a `wg set` of it (or any new configuration of it) starts it again.
    /// </summary>
    public string? Stopped { get; init; }
}
