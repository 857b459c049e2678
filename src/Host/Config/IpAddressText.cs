using System.Net;

namespace Firezone.Actors.Host.Config;

/// <summary>
/// An IP address written the way inet_pton(3) (wg(8)'s AllowedIPs) and Go's netip.ParseAddr
/// (wireguard-go's UAPI) take it: IPv4 as four decimal numbers without leading zeros, IPv6 in hex
/// groups, nothing around it. <see cref="IPAddress.TryParse(string?, out IPAddress?)"/> alone follows
/// inet_aton instead: "10" is 0.0.0.10, "10.1" is 10.0.0.1, "010.0.0.1" is octal 8.0.0.1, and it
/// takes "[::1]:80" as ::1, so a prefix written in any of those forms would silently name other
/// addresses than wg and wireguard-go refuse it for.
/// </summary>
public static class IpAddressText
{
    /// <summary>Parses <paramref name="text"/>; an IPv6 zone (<c>%eth0</c>) is left to the caller to allow or refuse.</summary>
    public static bool TryParse(string text, out IPAddress address)
    {
        address = IPAddress.None;
        int zone = text.IndexOf('%');
        string body = zone < 0 ? text : text[..zone];
        bool ok = body.Contains(':') ? IsIPv6(body) : IsDottedQuad(body);
        if (!ok || !IPAddress.TryParse(text, out var parsed))
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

    private static bool IsIPv6(string text)
    {
        foreach (char c in text)
        {
            if (!(char.IsAsciiHexDigit(c) || c is ':' or '.'))
            {
                return false;
            }
        }
        // An embedded IPv4 address (::ffff:192.0.2.1) is a dotted quad as well.
        return !text.Contains('.') || IsDottedQuad(text[(text.LastIndexOf(':') + 1)..]);
    }

    private static bool IsDottedQuad(string text)
    {
        string[] parts = text.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }
        foreach (var part in parts)
        {
            if (part.Length > 3 || (part.Length > 1 && part[0] == '0') || !DecimalText.IsDigits(part))
            {
                return false;
            }
            if (int.Parse(part, System.Globalization.CultureInfo.InvariantCulture) > 255)
            {
                return false;
            }
        }
        return true;
    }
}
