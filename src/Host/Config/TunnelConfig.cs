using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Config;

/// <summary>A parsed wg-quick style configuration file.</summary>
public sealed record TunnelConfig
{
    public required string SourcePath { get; init; }

    public required InterfaceConfig Interface { get; init; }

    public IReadOnlyList<PeerConfig> Peers { get; init; } = [];

    /// <summary>
    /// The line each peer's allowed IP came from (of the [Peer] it ended up with), so a route that
    /// ip refuses names it (STYLE rule 11); empty for a configuration that did not come from a file.
    /// </summary>
    public IReadOnlyDictionary<Engine.Routing.IpPrefix, int> AllowedIpLines { get; init; } = new Dictionary<Engine.Routing.IpPrefix, int>();

    /// <summary>Accepted keys the engine does not act on (wg-quick-only keys), for the log.</summary>
    public IReadOnlyList<ConfigNote> Notes { get; init; } = [];
}
