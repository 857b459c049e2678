using System.Net;
using System.Net.Sockets;

namespace Firezone.Actors.Host.Config;

/// <summary>The system resolver (getaddrinfo through <see cref="Dns"/>).</summary>
public sealed class DnsHostNameResolver : IHostNameResolver
{
    public static readonly DnsHostNameResolver Instance = new();

    public IReadOnlyList<IPAddress> Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            return [literal];
        }
        try
        {
            return Dns.GetHostAddresses(host);
        }
        catch (SocketException)
        {
            return [];
        }
    }
}
