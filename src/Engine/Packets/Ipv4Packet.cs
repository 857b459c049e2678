using System.Buffers.Binary;
using System.Net;

namespace Firezone.Actors.Engine.Packets;

/// <summary>
/// A checked view of an IPv4 packet (RFC 791) over a span. Construct with <see cref="TryParse"/>;
/// all accessors stay inside the validated header, so they never read out of bounds.
/// </summary>
public readonly ref struct Ipv4Packet
{
    /// <summary>The minimum (option-less) header length, IHL = 5.</summary>
    public const int HeaderLength = 20;

    /// <summary>The largest header, IHL = 15 (RFC 791 section 3.1: IHL is a 4-bit count of 32-bit words).</summary>
    public const int MaxHeaderLength = 60;

    private readonly Span<byte> _bytes;

    private Ipv4Packet(Span<byte> bytes) => _bytes = bytes;

    /// <summary>
    /// Validates version 4, IHL 5..15, that the whole IHL*4-byte header is present and that the total
    /// length covers the header and fits the buffer. Options are accepted and carried untouched:
    /// WireGuard forwards any IP packet (e.g. IGMP with the Router Alert option, RFC 2113), and the
    /// fields this view reads (TOS, total length, protocol, addresses, checksum) sit at fixed offsets in
    /// the first 20 bytes whatever the IHL. The view covers exactly total-length bytes; trailing bytes
    /// beyond it (link padding) are ignored.
    /// </summary>
    public static IpParseStatus TryParse(Span<byte> bytes, out Ipv4Packet packet)
    {
        packet = default;
        if (bytes.Length < HeaderLength)
        {
            return IpParseStatus.Truncated;
        }
        if (bytes[0] >> 4 != 4)
        {
            return IpParseStatus.WrongVersion;
        }
        int ihl = bytes[0] & 0x0F;
        if (ihl < 5)
        {
            return IpParseStatus.BadHeaderLength;
        }
        int headerLength = ihl * 4;
        if (bytes.Length < headerLength)
        {
            return IpParseStatus.Truncated;
        }
        int total = BinaryPrimitives.ReadUInt16BigEndian(bytes.Slice(2, 2));
        if (total < headerLength || total > bytes.Length)
        {
            return IpParseStatus.LengthMismatch;
        }
        packet = new Ipv4Packet(bytes[..total]);
        return IpParseStatus.Ok;
    }

    public int Version => 4;
    public int TotalLength => _bytes.Length;
    public Span<byte> Bytes => _bytes;
    /// <summary>IHL * 4: 20 without options, up to 60 with them.</summary>
    public int HeaderLengthBytes => (_bytes[0] & 0x0F) * 4;
    public Span<byte> Payload => _bytes[HeaderLengthBytes..];
    public byte Protocol => _bytes[9];
    public byte Ttl => _bytes[8];
    public ushort HeaderChecksum => BinaryPrimitives.ReadUInt16BigEndian(_bytes.Slice(10, 2));
    public ReadOnlySpan<byte> SourceBytes => _bytes.Slice(12, 4);
    public ReadOnlySpan<byte> DestinationBytes => _bytes.Slice(16, 4);
    public uint Source => BinaryPrimitives.ReadUInt32BigEndian(_bytes.Slice(12, 4));
    public uint Destination => BinaryPrimitives.ReadUInt32BigEndian(_bytes.Slice(16, 4));

    /// <summary>Allocates; for logs and tests, not for the packet path.</summary>
    public IPAddress SourceAddress => new(SourceBytes);

    /// <summary>Allocates; for logs and tests, not for the packet path.</summary>
    public IPAddress DestinationAddress => new(DestinationBytes);

    /// <summary>The two low bits of the TOS byte (RFC 3168 section 5).</summary>
    public Ecn Ecn
    {
        get => (Ecn)(_bytes[1] & 0b11);
    }

    /// <summary>
    /// Rewrites the ECN bits and patches the header checksum incrementally (RFC 1624): the TOS byte is
    /// the low half of the first 16-bit word (version/IHL, TOS), so only that word changes.
    /// </summary>
    public void SetEcn(Ecn ecn)
    {
        byte oldTos = _bytes[1];
        byte newTos = (byte)((oldTos & 0xFC) | ((byte)ecn & 0b11));
        if (oldTos == newTos)
        {
            return;
        }
        ushort oldWord = (ushort)(_bytes[0] << 8 | oldTos);
        ushort newWord = (ushort)(_bytes[0] << 8 | newTos);
        _bytes[1] = newTos;
        ushort checksum = Ipv4Checksum.Update(HeaderChecksum, oldWord, newWord);
        BinaryPrimitives.WriteUInt16BigEndian(_bytes.Slice(10, 2), checksum);
    }

    /// <summary>
    /// True when the stored header checksum matches a full recomputation (RFC 1071) over the whole
    /// IHL*4-byte header, options included (RFC 791 section 3.1: the checksum covers the header).
    /// </summary>
    public bool IsHeaderChecksumValid => Ipv4Checksum.Compute(_bytes[..HeaderLengthBytes]) == 0;
}
