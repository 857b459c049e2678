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

    /// <summary>
    /// Parses "a.b.c.d/n", "v6/n", or a bare address (a host prefix), the address in the strict form
    /// wg(8) and wireguard-go take (<see cref="IpAddressSyntax"/>: not "10.1/16" or "010.0.0.1/32").
    /// Host bits are cleared, as wg(8) does.
    /// </summary>
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
        if (!IpAddressSyntax.IsStrict(addressText) || !IPAddress.TryParse(addressText, out var address))
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

    /// <summary>
    /// Builds a prefix, clearing host bits. The family is the address's own: an IPv4-mapped IPv6 prefix
    /// (::ffff:a.b.c.d/n) stays an IPv6 prefix, as wg(8) parses it and as the kernel routes it.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative or longer than the address.</exception>
    public static IpPrefix Create(IPAddress address, int length)
    {
        ArgumentNullException.ThrowIfNull(address);
        int max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (length < 0 || length > max)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, $"a prefix length for {address} is between 0 and {max}");
        }
        var bytes = address.GetAddressBytes();
        for (int bit = length; bit < bytes.Length * 8; bit++)
        {
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }
        return new IpPrefix(new IPAddress(bytes), length);
    }

    /// <summary>
    /// True when <paramref name="address"/> (4 or 16 bytes, network order) lies inside this prefix
    /// (allocation-free). Only an address of the prefix's own family can be inside it: an IPv4-mapped IPv6
    /// address is not inside an IPv4 prefix, matching <see cref="AllowedIps{T}"/>.
    /// </summary>
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

    /// <summary>::ffff:0:0/96 (RFC 4291 section 2.5.5.2): ten zero bytes, then two 0xFF.</summary>
    internal static bool IsIPv4Mapped(ReadOnlySpan<byte> address) =>
        address.Length == 16 && address[..10].IndexOfAnyExcept((byte)0) < 0 && address[10] == 0xFF && address[11] == 0xFF;

    /// <summary>"10.0.0.0/24", as wg(8) prints allowed IPs.</summary>
    public override string ToString() => $"{Address}/{Length}";
}
