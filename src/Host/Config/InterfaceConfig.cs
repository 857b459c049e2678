using Firezone.Actors.Engine;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Config;

/// <summary>The [Interface] section of a wg-quick file, plus the engine's own <c>#!</c> directives.</summary>
public sealed record InterfaceConfig
{
    /// <summary>Null when the file has none: the interface starts without a key, as after wg setconf of such a file (a PostUp may give it one).</summary>
    public WireGuardKey? PrivateKey { get; init; }

    /// <summary>Null: let the socket pick a port (wg(8) says "chosen randomly").</summary>
    public ushort? ListenPort { get; init; }

    /// <summary>The line of <see cref="ListenPort"/> in the file (0: none), to name it when the port cannot be bound.</summary>
    public int ListenPortLine { get; init; }

    /// <summary>The SO_MARK for outgoing datagrams; null or 0 for none.</summary>
    public uint? FwMark { get; init; }

    /// <summary>The line of <see cref="FwMark"/> in the file (0: none), to name it when the mark cannot be set.</summary>
    public int FwMarkLine { get; init; }

    public IReadOnlyList<InterfaceAddress> Addresses { get; init; } = [];

    /// <summary>The line of each of <see cref="Addresses"/>, in the same order (empty when not read from a file), to name it when ip refuses the address.</summary>
    public IReadOnlyList<int> AddressLines { get; init; } = [];

    public int? Mtu { get; init; }

    /// <summary>wg-quick's Table: where the allowed IPs' routes go, or none (<see cref="RouteTable.Off"/>).</summary>
    public RouteTable Table { get; init; } = RouteTable.Auto;

    /// <summary>DNS servers (the DNS entries that are addresses), for resolvconf as wg-quick gives them.</summary>
    public IReadOnlyList<string> Dns { get; init; } = [];

    /// <summary>DNS search domains (the DNS entries that are not addresses).</summary>
    public IReadOnlyList<string> DnsSearch { get; init; } = [];

    /// <summary>The line of the first DNS key (0: none), to name it when resolvconf fails.</summary>
    public int DnsLine { get; init; }

    /// <summary>PreUp, PostUp, PreDown and PostDown lines, in the file's order (service mode runs them).</summary>
    public IReadOnlyList<WgQuickHook> Hooks { get; init; } = [];

    /// <summary>
    /// wg-quick's SaveConfig: on stop, the file is rewritten with the interface's state as it is
    /// then (peers added with <c>wg set</c>, endpoints learned by roaming); see <see cref="SavedConfigText"/>.
    /// </summary>
    public bool SaveConfig { get; init; }

    public HostRole Role { get; init; } = HostRole.Client;

    /// <summary>The ECN mode of peers that do not name their own (<c>#! EcnMode</c> in [Interface]).</summary>
    public EcnMode DefaultEcnMode { get; init; } = EcnMode.Normal;
}
