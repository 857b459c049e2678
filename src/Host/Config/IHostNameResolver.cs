using System.Net;

namespace Firezone.Actors.Host.Config;

/// <summary>Resolves an Endpoint's host name when the configuration is read (as wg(8) does once, at set time).</summary>
public interface IHostNameResolver
{
    /// <summary>The addresses of <paramref name="host"/>; empty (or <see cref="HostNameResolutionException"/> with the reason) when it does not resolve.</summary>
    IReadOnlyList<IPAddress> Resolve(string host);
}
