using System.Net;
using Firezone.Actors.Engine.Routing;

namespace Firezone.Actors.Host.Config;

/// <summary>
/// An IP address written the way inet_pton(3) and Go's netip.ParseAddr take it (<see cref="IpAddressSyntax"/>),
/// and the looser form ip(8) reads for <c>ip address add</c>.
/// </summary>
public static class IpAddressText
{
    /// <summary>Parses <paramref name="text"/>; an IPv6 zone (<c>%eth0</c>) is left to the caller to allow or refuse.</summary>
    public static bool TryParse(string text, out IPAddress address)
    {
        address = IPAddress.None;
        int zone = text.IndexOf('%');
        string body = zone < 0 ? text : text[..zone];
        if (!IpAddressSyntax.IsStrict(body) || !IPAddress.TryParse(text, out var parsed))
        {
            return false;
        }
        address = parsed;
        return true;
    }

    /// <summary>
    /// An IPv4 address as ip(8) reads it for <c>ip address add</c> (iproute2's get_addr_ipv4), which
    /// is what a wg-quick <c>Address</c> becomes: one to four dot-separated C numbers (a leading
    /// <c>0x</c> is hex, a leading 0 octal), each at most 255, the missing parts zero. So "10.1" is
    /// 10.1.0.0 and "010.0.0.1" is 8.0.0.1, as ip assigns them.
    /// </summary>
    public static bool TryParseIpv4AsIpCommand(string text, out IPAddress address)
    {
        address = IPAddress.None;
        string[] parts = text.Split('.');
        if (parts.Length > 4)
        {
            return false;
        }
        Span<byte> bytes = stackalloc byte[4];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!IpNumberText.TryParse(parts[i], out uint part) || part > 255)
            {
                return false;
            }
            bytes[i] = (byte)part;
        }
        address = new IPAddress(bytes);
        return true;
    }
}
