using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Host.Config;

/// <summary>A parsed wg-quick style configuration file.</summary>
public sealed record TunnelConfig
{
    public required string SourcePath { get; init; }

    public required InterfaceConfig Interface { get; init; }

    public IReadOnlyList<PeerConfig> Peers { get; init; } = [];

    /// <summary>Accepted keys the engine does not act on (wg-quick-only keys), for the log.</summary>
    public IReadOnlyList<ConfigNote> Notes { get; init; } = [];
}
