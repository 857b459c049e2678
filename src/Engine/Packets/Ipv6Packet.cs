using System.Buffers.Binary;
using System.Net;

namespace Firezone.Actors.Engine.Packets;

/// <summary>
/// A checked view of an IPv6 packet (RFC 8200) over a span. Construct with <see cref="TryParse"/>.
/// IPv6 has no header checksum, so ECN rewrites touch only the Traffic Class.
/// </summary>
public readonly ref struct Ipv6Packet
{
    public const int HeaderLength = 40;
    private readonly Span<byte> _bytes;

    private Ipv6Packet(Span<byte> bytes) => _bytes = bytes;

    /// <summary>Validates version 6 and that 40 + payload length fits the buffer (jumbograms are not supported).</summary>
    public static IpParseStatus TryParse(Span<byte> bytes, out Ipv6Packet packet)
    {
        packet = default;
        if (bytes.Length < HeaderLength)
        {
            return IpParseStatus.Truncated;
        }
        if (bytes[0] >> 4 != 6)
        {
            return IpParseStatus.WrongVersion;
        }
        int total = HeaderLength + BinaryPrimitives.ReadUInt16BigEndian(bytes.Slice(4, 2));
        if (total > bytes.Length)
        {
            return IpParseStatus.LengthMismatch;
        }
        packet = new Ipv6Packet(bytes[..total]);
        return IpParseStatus.Ok;
    }

    public int Version => 6;
    public int TotalLength => _bytes.Length;
    public Span<byte> Bytes => _bytes;
    public Span<byte> Payload => _bytes[HeaderLength..];

    /// <summary>The Next Header field of the fixed header (extension headers are not followed).</summary>
    public byte NextHeader => _bytes[6];
    public byte HopLimit => _bytes[7];
    public ReadOnlySpan<byte> SourceBytes => _bytes.Slice(8, 16);
    public ReadOnlySpan<byte> DestinationBytes => _bytes.Slice(24, 16);

    /// <summary>Allocates; for logs and tests, not for the packet path.</summary>
    public IPAddress SourceAddress => new(SourceBytes);

    /// <summary>Allocates; for logs and tests, not for the packet path.</summary>
    public IPAddress DestinationAddress => new(DestinationBytes);

    /// <summary>The 8-bit Traffic Class: low nibble of byte 0 and high nibble of byte 1.</summary>
    public byte TrafficClass => (byte)((_bytes[0] & 0x0F) << 4 | _bytes[1] >> 4);

    /// <summary>The two low bits of the Traffic Class (RFC 3168 section 5), i.e. bits 5..4 of byte 1.</summary>
    public Ecn Ecn => (Ecn)((_bytes[1] >> 4) & 0b11);

    public void SetEcn(Ecn ecn) => _bytes[1] = (byte)((_bytes[1] & 0xCF) | (((byte)ecn & 0b11) << 4));
}
