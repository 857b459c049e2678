using System.Net;
using System.Net.Sockets;

namespace Firezone.Actors.Engine.Routing;

/// <summary>An IPv4 or IPv6 CIDR prefix such as 10.0.0.0/24 or fd00::/64 (host bits cleared).</summary>
public sealed record IpPrefix
{
    private IpPrefix(IPAddress address, int length)
    {
        Address = address;
        Length = length;
    }

    /// <summary>The network address with host bits zeroed.</summary>
    public IPAddress Address { get; }

    public int Length { get; }

    public bool IsIPv4 => Address.AddressFamily == AddressFamily.InterNetwork;

    public int MaxLength => IsIPv4 ? 32 : 128;

    /// <summary>Parses "a.b.c.d/n", "v6/n", or a bare address (a host prefix). Host bits are cleared, as wg(8) does.</summary>
    public static bool TryParse(string? text, out IpPrefix prefix, out string error)
    {
        prefix = null!;
        error = "";
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "empty address";
            return false;
        }
        text = text.Trim();
        int slash = text.IndexOf('/');
        string addressText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addressText, out var address) || addressText.Contains('%'))
        {
            error = $"'{addressText}' is not an IP address";
            return false;
        }
        int max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        int length = max;
        if (slash >= 0 && (!int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, null, out length) || length > max))
        {
            error = $"'{text[(slash + 1)..]}' is not a prefix length between 0 and {max}";
            return false;
        }
        prefix = Create(address, length);
        return true;
    }

    public static IpPrefix Parse(string text) =>
        TryParse(text, out var prefix, out var error) ? prefix : throw new FormatException(error);

    /// <summary>Builds a prefix, clearing host bits. IPv4-mapped IPv6 addresses become IPv4.</summary>
    public static IpPrefix Create(IPAddress address, int length)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
            length = Math.Max(0, length - 96);
        }
        var bytes = address.GetAddressBytes();
        for (int bit = length; bit < bytes.Length * 8; bit++)
        {
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }
        return new IpPrefix(new IPAddress(bytes), length);
    }

    /// <summary>True when <paramref name="address"/> lies inside this prefix (allocation-free).</summary>
    public bool Contains(ReadOnlySpan<byte> address)
    {
        if (address.Length != (IsIPv4 ? 4 : 16))
        {
            return false;
        }
        Span<byte> network = stackalloc byte[16];
        Address.TryWriteBytes(network, out _);
        int full = Length / 8;
        if (!address[..full].SequenceEqual(network[..full]))
        {
            return false;
        }
        int rest = Length % 8;
        if (rest == 0)
        {
            return true;
        }
        byte mask = (byte)(0xFF << (8 - rest));
        return (address[full] & mask) == (network[full] & mask);
    }

    /// <summary>"10.0.0.0/24", as wg(8) prints allowed IPs.</summary>
    public override string ToString() => $"{Address}/{Length}";
}
