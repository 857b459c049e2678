using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Uapi;

/// <summary>A parsed <c>set=1</c> request (https://www.wireguard.com/xplatform/#configuration-protocol).</summary>
public sealed class UapiSetRequest
{
    /// <summary>Set when <c>private_key</c> was given; an all-zero key removes it.</summary>
    public WireGuardKey? PrivateKey { get; set; }

    public ushort? ListenPort { get; set; }

    public uint? Fwmark { get; set; }

    public bool ReplacePeers { get; set; }

    /// <summary>Peers in request order; the same key may appear more than once.</summary>
    public List<UapiPeerChange> Peers { get; } = [];
}

/// <summary>The lines after one <c>public_key=</c> of a set request.</summary>
public sealed class UapiPeerChange(WireGuardKey publicKey)
{
    public WireGuardKey PublicKey { get; } = publicKey;

    public bool Remove { get; set; }

    /// <summary>Only change an existing peer, never create one.</summary>
    public bool UpdateOnly { get; set; }

    /// <summary>Set when given; all zero removes the preshared key.</summary>
    public WireGuardKey? PresharedKey { get; set; }

    public UdpEndpoint? Endpoint { get; set; }

    public ushort? PersistentKeepaliveSeconds { get; set; }

    /// <summary><c>replace_allowed_ips</c> and <c>allowed_ip</c> lines, in order (order matters: replace clears what came before).</summary>
    public List<AllowedIpChange> AllowedIps { get; } = [];
}

public enum AllowedIpChangeKind { ReplaceAll, Add, Remove }

public readonly record struct AllowedIpChange(AllowedIpChangeKind Kind, IpPrefix? Prefix);
