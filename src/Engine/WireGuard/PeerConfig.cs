using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>What the configuration (wg-quick file or UAPI) says about one peer.</summary>
public sealed record PeerConfig
{
    public required WireGuardKey PublicKey { get; init; }

    /// <summary>The optional preshared key (whitepaper section 5.2); null for none.</summary>
    public WireGuardKey? PresharedKey { get; init; }

    /// <summary>Where to send, until roaming (section 6.5) replaces it; <see cref="UdpEndpoint.None"/> if unknown.</summary>
    public UdpEndpoint Endpoint { get; init; }

    /// <summary>Persistent keepalive interval in seconds (section 6.5); 0 = off.</summary>
    public ushort PersistentKeepaliveSeconds { get; init; }

    public IReadOnlyList<IpPrefix> AllowedIps { get; init; } = [];

    /// <summary>ECN copy-in and copy-out mode for this peer.</summary>
    public EcnMode EcnMode { get; init; } = EcnMode.Normal;
}
