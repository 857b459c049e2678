using System.Net;

namespace Firezone.Actors.Host.Config;

/// <summary>
/// Stands in for the resolver when a running daemon reads its configuration file again for settings
/// other than the peers' endpoints (the save's [Interface], the peers' ECN modes): an Endpoint's
/// host name is not looked up, so the read neither waits for DNS nor fails without it.
/// </summary>
internal sealed class NoHostNameLookup : IHostNameResolver
{
    public static readonly NoHostNameLookup Instance = new();

    public IReadOnlyList<IPAddress> Resolve(string host) => [IPAddress.Loopback];
}
