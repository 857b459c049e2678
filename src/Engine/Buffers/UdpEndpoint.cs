using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Firezone.Actors.Engine.Buffers;

/// <summary>
/// A UDP endpoint as a value type, so datagrams carry their source or destination without allocating
/// an <see cref="IPEndPoint"/> per packet. IPv4 addresses are held in their IPv4-mapped IPv6 form
/// (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2), which is also how a dual-stack socket sees them.
/// </summary>
public readonly struct UdpEndpoint : IEquatable<UdpEndpoint>
{
    private readonly ulong _high;
    private readonly ulong _low;

    public ushort Port { get; }

    private UdpEndpoint(ulong high, ulong low, ushort port)
    {
        _high = high;
        _low = low;
        Port = port;
    }

    /// <summary>No endpoint (port 0, address ::).</summary>
    public static UdpEndpoint None => default;

    public bool IsNone => _high == 0 && _low == 0 && Port == 0;

    /// <summary>True for an IPv4 endpoint (IPv4-mapped form).</summary>
    public bool IsIPv4 => _high == 0 && (_low >> 32) == 0x0000_FFFF;

    /// <summary>From the 16 bytes of an IPv6 (or IPv4-mapped) address in network order.</summary>
    public static UdpEndpoint FromIPv6(ReadOnlySpan<byte> address16, ushort port) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(address16), BinaryPrimitives.ReadUInt64BigEndian(address16[8..]), port);

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
        return FromIPv6(bytes, (ushort)endPoint.Port);
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
        return new IPEndPoint(new IPAddress(v6), Port);
    }

    public bool Equals(UdpEndpoint other) => _high == other._high && _low == other._low && Port == other.Port;
    public override bool Equals(object? obj) => obj is UdpEndpoint other && Equals(other);
    public override int GetHashCode() => HashCode.Combine(_high, _low, Port);
    public static bool operator ==(UdpEndpoint a, UdpEndpoint b) => a.Equals(b);
    public static bool operator !=(UdpEndpoint a, UdpEndpoint b) => !a.Equals(b);

    /// <summary>"a.b.c.d:port" or "[v6]:port", as wg(8) prints endpoints.</summary>
    public override string ToString() => IsNone ? "(none)" : ToIPEndPoint().ToString();
}
