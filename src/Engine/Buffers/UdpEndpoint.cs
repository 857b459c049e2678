using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Firezone.Actors.Engine.Buffers;

/// <summary>
/// A UDP endpoint as a value type, so datagrams carry their source or destination without allocating
/// an <see cref="IPEndPoint"/> per packet. IPv4 addresses are held in their IPv4-mapped IPv6 form
/// (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2), which is also how a dual-stack socket sees them.
/// An IPv6 link-local address (fe80::/10) means nothing without its interface, so the endpoint
/// carries the scope id (sin6_scope_id, an interface index; 0 for every other address) in both
/// directions, as wireguard-go's zone: a reply to a link-local source leaves by the link it came on.
/// </summary>
public readonly struct UdpEndpoint : IEquatable<UdpEndpoint>
{
    private readonly ulong _high;
    private readonly ulong _low;

    /// <summary>
    /// Set for [::]:0 given as an endpoint (<see cref="FromIPEndPoint"/>), which shares its bits with
    /// <see cref="None"/>: wireguard-go and the kernel keep it as the peer's endpoint (wg show prints
    /// it; a send there fails per datagram), where "none" would leave a new peer without one and an
    /// existing peer on its old one. Fits the struct's padding (24 bytes either way).
    /// </summary>
    private readonly bool _unspecified;

    public ushort Port { get; }

    /// <summary>The IPv6 scope id (interface index) of a link-local address; 0 otherwise.</summary>
    public uint ScopeId { get; }

    private UdpEndpoint(ulong high, ulong low, ushort port, uint scopeId = 0, bool unspecified = false)
    {
        _high = high;
        _low = low;
        Port = port;
        ScopeId = scopeId;
        _unspecified = unspecified;
    }

    /// <summary>No endpoint (port 0, address ::; [::]:0 given as an endpoint is not this).</summary>
    public static UdpEndpoint None => default;

    public bool IsNone => _high == 0 && _low == 0 && Port == 0 && !_unspecified;

    /// <summary>True for an IPv4 endpoint (IPv4-mapped form).</summary>
    public bool IsIPv4 => _high == 0 && (_low >> 32) == 0x0000_FFFF;

    /// <summary>From the 16 bytes of an IPv6 (or IPv4-mapped) address in network order, and its scope id.</summary>
    public static UdpEndpoint FromIPv6(ReadOnlySpan<byte> address16, ushort port, uint scopeId = 0) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(address16), BinaryPrimitives.ReadUInt64BigEndian(address16[8..]), port, scopeId);

    /// <summary>From the 4 bytes of an IPv4 address in network order.</summary>
    public static UdpEndpoint FromIPv4(ReadOnlySpan<byte> address4, ushort port) =>
        new(0, 0x0000_FFFF_0000_0000UL | BinaryPrimitives.ReadUInt32BigEndian(address4), port);

    public static UdpEndpoint FromIPEndPoint(IPEndPoint endPoint)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (endPoint.AddressFamily == AddressFamily.InterNetwork)
        {
            endPoint.Address.TryWriteBytes(bytes, out _);
            return FromIPv4(bytes[..4], (ushort)endPoint.Port);
        }
        endPoint.Address.TryWriteBytes(bytes, out _);
        var endpoint = FromIPv6(bytes, (ushort)endPoint.Port, (uint)endPoint.Address.ScopeId);
        return endpoint.IsNone ? new UdpEndpoint(0, 0, 0, endpoint.ScopeId, unspecified: true) : endpoint;
    }

    /// <summary>Writes the 16-byte (IPv4-mapped for IPv4) address in network order.</summary>
    public void WriteIPv6(Span<byte> destination16)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination16, _high);
        BinaryPrimitives.WriteUInt64BigEndian(destination16[8..], _low);
    }

    /// <summary>Writes the 4-byte IPv4 address; only meaningful when <see cref="IsIPv4"/>.</summary>
    public void WriteIPv4(Span<byte> destination4) => BinaryPrimitives.WriteUInt32BigEndian(destination4, (uint)_low);

    /// <summary>Allocates; for configuration, logs and the UAPI, not the packet path.</summary>
    public IPEndPoint ToIPEndPoint()
    {
        if (IsIPv4)
        {
            Span<byte> v4 = stackalloc byte[4];
            WriteIPv4(v4);
            return new IPEndPoint(new IPAddress(v4), Port);
        }
        Span<byte> v6 = stackalloc byte[16];
        WriteIPv6(v6);
        return new IPEndPoint(new IPAddress(v6, ScopeId), Port);
    }

    public bool Equals(UdpEndpoint other) => _high == other._high && _low == other._low && Port == other.Port && ScopeId == other.ScopeId && _unspecified == other._unspecified;
    public override bool Equals(object? obj) => obj is UdpEndpoint other && Equals(other);
    public override int GetHashCode() => HashCode.Combine(_high, _low, Port, ScopeId, _unspecified);
    public static bool operator ==(UdpEndpoint a, UdpEndpoint b) => a.Equals(b);
    public static bool operator !=(UdpEndpoint a, UdpEndpoint b) => !a.Equals(b);

    /// <summary>"a.b.c.d:port", "[v6]:port" or "[fe80::1%2]:port", as wg(8) prints endpoints.</summary>
    public override string ToString() => IsNone ? "(none)" : ToIPEndPoint().ToString();
}
