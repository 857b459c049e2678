using System.Net;
using System.Net.Sockets;

namespace Firezone.Actors.Host.Config;

/// <summary>
/// An address assigned to the tunnel interface, such as 10.0.0.2/24: unlike an
/// <see cref="Engine.Routing.IpPrefix"/> it keeps its host bits (it is what <c>ip address add</c> takes).
/// </summary>
public sealed record InterfaceAddress(IPAddress Address, int PrefixLength)
{
    public bool IsIPv4 => Address.AddressFamily == AddressFamily.InterNetwork;

    /// <summary>Parses "10.0.0.2/24", "fd00::2/64" or a bare address (a host address, /32 or /128).</summary>
    public static bool TryParse(string text, out InterfaceAddress address, out string error)
    {
        address = null!;
        error = "";
        int slash = text.IndexOf('/');
        string addressText = slash < 0 ? text : text[..slash];
        // wg-quick hands Address to ip(8) as written: IPv4 as ip reads it, IPv6 as inet_pton (which ip uses for it).
        IPAddress ip = IPAddress.None;
        if (addressText.Length == 0 || addressText.Contains('%')
            || !(addressText.Contains(':') ? IpAddressText.TryParse(addressText, out ip) : IpAddressText.TryParseIpv4AsIpCommand(addressText, out ip)))
        {
            error = "an entry is not an address in CIDR notation";
            return false;
        }
        int max = ip.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        int length = max;
        if (slash >= 0)
        {
            // ip(8) reads the length as a C number: "10.0.0.1/024" is a /20 there.
            if (!IpNumberText.TryParse(text[(slash + 1)..], out uint bits) || bits > max)
            {
                error = $"an entry has a bad prefix length (0 to {max})";
                return false;
            }
            length = (int)bits;
        }
        address = new InterfaceAddress(ip, length);
        return true;
    }

    public override string ToString() => $"{Address}/{PrefixLength}";
}
