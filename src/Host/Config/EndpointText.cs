using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Host.Config;

/// <summary>
/// The "host:port" and "[v6]:port" forms of an endpoint, as wg(8) and the UAPI write them. Split
/// the way wireguard-tools' config.c does: a leading '[' means a bracketed IPv6 literal, otherwise
/// the port follows the last ':'.
/// </summary>
public static class EndpointText
{
    /// <param name="allowPortZero">
    /// Port 0 is accepted (the UAPI: wireguard-go takes <c>endpoint=IP:0</c>, and a send to it fails
    /// per datagram); a configuration file refuses it, where it is a typo.
    /// </param>
    /// <param name="allowServiceName">
    /// The port may be a UDP service name ("domain"), as wg(8) reads a file's Endpoint (getaddrinfo
    /// with the port as its service); the UAPI takes numbers only, as wireguard-go does.
    /// </param>
    public static bool TrySplit(string text, out string host, out ushort port, out string error, bool allowPortZero = false, bool allowServiceName = false)
    {
        host = "";
        port = 0;
        error = "";
        string portText;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                error = "not an endpoint ([address]:port)";
                return false;
            }
            host = text[1..close];
            portText = text[(close + 2)..];
        }
        else
        {
            int colon = text.LastIndexOf(':');
            if (colon <= 0)
            {
                error = "not an endpoint (host:port)";
                return false;
            }
            host = text[..colon];
            portText = text[(colon + 1)..];
            if (host.Contains(':'))
            {
                error = "not an endpoint (write IPv6 addresses as [address]:port)";
                return false;
            }
        }
        if (!TryParsePort(portText, allowServiceName, out port) || (port == 0 && !allowPortZero))
        {
            error = (allowPortZero ? "the port is not a number between 0 and 65535" : "the port is not a number between 1 and 65535")
                + (allowServiceName ? " or a UDP service name (/etc/services)" : "");
            return false;
        }
        if (host.Length == 0)
        {
            error = "the endpoint has no host";
            return false;
        }
        return true;
    }

    /// <summary>
    /// A port, 0 to 65535, in decimal digits only (getaddrinfo, which wg reads ports with, would also
    /// take "+5" and cut 65536 to 0: typos here), or with <paramref name="allowServiceName"/> a UDP
    /// service name, looked up as wg looks it up (<see cref="Native.UdpServiceName"/>).
    /// </summary>
    public static bool TryParsePort(string text, bool allowServiceName, out ushort port)
    {
        port = 0;
        return DecimalText.IsDigits(text)
            ? ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port)
            : allowServiceName && Native.UdpServiceName.TryGetPort(text, out port);
    }

    /// <summary>A numeric endpoint only (the UAPI form; wireguard-go uses netip.ParseAddrPort).</summary>
    public static bool TryParseNumeric(string text, out UdpEndpoint endpoint, out string error)
    {
        endpoint = UdpEndpoint.None;
        if (!TrySplit(text, out var host, out var port, out error, allowPortZero: true))
        {
            return false;
        }
        if (!IpAddressText.TryParse(host, out var address)
            || (address.AddressFamily == AddressFamily.InterNetworkV6) != text.StartsWith('['))
        {
            error = "the host is not an IP address";
            return false;
        }
        // An IPv6 zone (fe80::1%eth0 or %2, as wireguard-go's netip.ParseAddrPort takes it): .NET
        // resolves a name with if_nametoindex and gives scope 0 for a name no interface has.
        if (host.IndexOf('%') is int zone and >= 0 && address.ScopeId == 0)
        {
            error = $"no interface '{host[(zone + 1)..]}' for the address's zone";
            return false;
        }
        endpoint = UdpEndpoint.FromIPEndPoint(new IPEndPoint(address, port));
        return true;
    }

    /// <summary>
    /// As the UAPI get writes it: "a.b.c.d:port", "[v6]:port" (the address as <see cref="FormatAddress"/>
    /// writes it) or, for a link-local address, "[fe80::1%2]:port" (the interface index).
    /// </summary>
    public static string Format(UdpEndpoint endpoint)
    {
        var ip = endpoint.ToIPEndPoint();
        return ip.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{FormatAddress(ip.Address)}]:{ip.Port.ToString(CultureInfo.InvariantCulture)}"
            : $"{ip.Address}:{ip.Port.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>
    /// An address as Go's netip writes it, so wireguard-go's get: RFC 5952 hex for IPv6 (the longest
    /// run of two or more zero groups as "::", the first of equal ones), a dotted IPv4 tail only for
    /// an IPv4-mapped address (<c>::ffff:0.0.0.0</c>), and the zone (here its index) after '%'.
    /// .NET's text differs for a few: it writes <c>::1.2.3.4</c> and <c>::ffff:0:1.2.3.4</c> dotted
    /// (Go <c>::102:304</c>, <c>::ffff:0:102:304</c>) and <c>::ffff:0.0.0.1</c> as <c>::ffff:0:1</c>.
    /// </summary>
    public static string FormatAddress(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        var text = new System.Text.StringBuilder(48);
        if (address.IsIPv4MappedToIPv6)
        {
            text.Append("::ffff:").Append(bytes[12]).Append('.').Append(bytes[13]).Append('.').Append(bytes[14]).Append('.').Append(bytes[15]);
        }
        else
        {
            int zeroStart = -1, zeroEnd = -1;
            for (int i = 0; i < 8;)
            {
                int j = i;
                while (j < 8 && bytes[2 * j] == 0 && bytes[(2 * j) + 1] == 0)
                {
                    j++;
                }
                if (j - i >= 2 && j - i > zeroEnd - zeroStart)
                {
                    zeroStart = i;
                    zeroEnd = j;
                }
                i = j == i ? i + 1 : j;
            }
            for (int i = 0; i < 8; i++)
            {
                if (i == zeroStart)
                {
                    text.Append("::");
                    i = zeroEnd;
                    if (i >= 8)
                    {
                        break;
                    }
                }
                else if (i > 0)
                {
                    text.Append(':');
                }
                text.Append(((bytes[2 * i] << 8) | bytes[(2 * i) + 1]).ToString("x", CultureInfo.InvariantCulture));
            }
        }
        if (address.ScopeId != 0)
        {
            text.Append('%').Append(address.ScopeId.ToString(CultureInfo.InvariantCulture));
        }
        return text.ToString();
    }

    /// <summary>
    /// As wg show and wg showconf print it (getnameinfo): a link-local IPv6 endpoint's zone by the
    /// interface's name (<c>[fe80::1%eth0]:51820</c>), which outlives a reboot, where
    /// <see cref="Format"/> writes its index. The name is read by index in the calling thread's
    /// network namespace (SIOCGIFNAME, as if_indextoname), so an interface without an IPv6 address
    /// (a veth that is down), which .NET's NetworkInterface list leaves out, is named too. When no
    /// interface has the index any more (deleted since the endpoint was set), the number stays, as
    /// getnameinfo and Go's net package (wireguard-go) write such a zone.
    /// </summary>
    public static string FormatAsWg(UdpEndpoint endpoint)
    {
        var ip = endpoint.ToIPEndPoint();
        if (ip.AddressFamily == AddressFamily.InterNetworkV6 && ip.Address.ScopeId is > 0 and <= int.MaxValue
            && Native.NetworkInterfaceControl.TryGetName((int)ip.Address.ScopeId, out var zone))
        {
            var bare = new IPAddress(ip.Address.GetAddressBytes());
            return $"[{bare}%{zone}]:{ip.Port.ToString(CultureInfo.InvariantCulture)}";
        }
        return ip.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ip.Address}]:{ip.Port}" : $"{ip.Address}:{ip.Port}";
    }
}
