namespace Firezone.Actors.Engine.Routing;

/// <summary>
/// Whether a text is an IP address written the way inet_pton(3) (wg(8)'s AllowedIPs) and Go's
/// netip.ParseAddr (wireguard-go's UAPI) take it: IPv4 as four decimal numbers without leading zeros,
/// IPv6 in hex groups, nothing around it. <see cref="System.Net.IPAddress.TryParse(string?, out System.Net.IPAddress?)"/>
/// alone follows inet_aton: "10" is 0.0.0.10, "10.1" is 10.0.0.1, "010.0.0.1" is octal 8.0.0.1, and
/// it takes "[::1]:80" as ::1, so a prefix in any of those forms would name other addresses than wg
/// and wireguard-go refuse it for. Written by hand: .NET has no inet_pton-strict parser.
/// </summary>
public static class IpAddressSyntax
{
    /// <summary>The address's characters are an inet_pton form (an IPv6 zone must be cut off first).</summary>
    public static bool IsStrict(ReadOnlySpan<char> text) => text.Contains(':') ? IsIPv6(text) : IsDottedQuad(text);

    private static bool IsIPv6(ReadOnlySpan<char> text)
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

    private static bool IsDottedQuad(ReadOnlySpan<char> text)
    {
        int parts = 0;
        foreach (var range in text.Split('.'))
        {
            var part = text[range];
            if (++parts > 4 || part.Length is 0 or > 3 || (part.Length > 1 && part[0] == '0') || !IsDigits(part)
                || int.Parse(part, provider: System.Globalization.CultureInfo.InvariantCulture) > 255)
            {
                return false;
            }
        }
        return parts == 4;
    }

    private static bool IsDigits(ReadOnlySpan<char> text)
    {
        foreach (char c in text)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }
        return true;
    }
}
