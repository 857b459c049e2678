using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Control;

/// <summary>
/// The device's configuration without its live state (no counters, no handshake times, no roamed
/// endpoints): what a <c>set=1</c> applies its changes to.
/// </summary>
public sealed record DeviceConfiguration
{
    /// <summary>Null when no private key is set.</summary>
    public WireGuardKey? PrivateKey { get; init; }

    /// <summary>Derived from <see cref="PrivateKey"/>; null when it is unset.</summary>
    public WireGuardKey? PublicKey { get; init; }

    public uint Fwmark { get; init; }

    /// <summary>The peers' configurations, in the order they were added.</summary>
    public IReadOnlyList<PeerConfig> Peers { get; init; } = [];

    public static DeviceConfiguration Of(DeviceStatus status) => new()
    {
        PrivateKey = status.PrivateKey,
        PublicKey = status.PublicKey,
        Fwmark = status.Fwmark,
        Peers = status.Peers.Select(peer => peer.Config).ToArray(),
    };
}
