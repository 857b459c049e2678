using System.Buffers.Binary;

namespace Firezone.Actors.Engine.Offload;

/// <summary>
/// Splits one TSO/USO super-packet (read from a TUN device with IFF_VNET_HDR) into wire-sized
/// packets, the way the kernel's tcp_gso_segment/__udp_gso_segment would: each segment gets the
/// super-packet's headers with its own IPv4 total length, incremented IPv4 identification and header
/// checksum (or IPv6 payload length), TCP sequence number (FIN and PSH only on the last segment, CWR
/// only on the first, RFC 3168 section 6.1.2) or UDP length, and a full TCP/UDP checksum including the
/// pseudo-header (with NEEDS_CSUM, the sum the field holds, adjusted for the segment's length, as the
/// kernel does). The IP header, and so the ECN codepoint, is the same for every segment.
///
/// Resumable: <see cref="Begin"/> takes the super-packet, then each <see cref="NextSegment"/> writes one
/// segment, so a caller short of buffers hands the rest out later. The super-packet stays in the
/// caller's memory and is passed again to every call (this class holds no span).
/// </summary>
public sealed class GsoSegmenter
{
    private const byte TcpFin = 0x01, TcpPsh = 0x08, TcpCwr = 0x80;
    private const byte ProtocolTcp = 6, ProtocolUdp = 17;

    private int _packetLength;
    private int _l4Offset;
    private int _headerLength;
    private int _segmentSize;
    private int _segmentCount;
    private int _next;
    private bool _isIpv6;
    private bool _isUdp;
    // The pseudo-header sum without its length word: each segment adds its own length.
    private ushort _pseudoHeaderBase;

    /// <summary>Segments of the current super-packet not yet written.</summary>
    public int PendingSegments => _segmentCount - _next;

    public bool HasPending => _next < _segmentCount;

    /// <summary>The longest segment of the current super-packet (headers + gso_size).</summary>
    public int MaxSegmentLength => _headerLength + _segmentSize;

    /// <summary>Forgets the current super-packet (e.g. when it is dropped).</summary>
    public void Clear()
    {
        _segmentCount = 0;
        _next = 0;
    }

    /// <summary>
    /// Accepts a super-packet of gso_type TCPV4, TCPV6 or UDP_L4. The lengths come from the bytes
    /// read, not from the header fields (which the kernel may leave at the super-packet's size).
    /// </summary>
    public OffloadStatus Begin(ReadOnlySpan<byte> packet, in VirtioNetHeader header)
    {
        Clear();
        byte gsoType = (byte)(header.GsoType & ~VirtioNetHeader.GsoEcn);
        if (gsoType is not (VirtioNetHeader.GsoTcpV4 or VirtioNetHeader.GsoTcpV6 or VirtioNetHeader.GsoUdpL4))
        {
            return OffloadStatus.Unsupported;
        }
        bool udp = gsoType == VirtioNetHeader.GsoUdpL4;
        byte protocol = udp ? ProtocolUdp : ProtocolTcp;
        if (packet.Length < 20)
        {
            return OffloadStatus.Malformed;
        }
        int version = packet[0] >> 4;
        int l4;
        if (version == 4 && gsoType != VirtioNetHeader.GsoTcpV6)
        {
            l4 = (packet[0] & 0x0F) * 4;
            if (l4 < 20 || packet[9] != protocol)
            {
                return OffloadStatus.Malformed;
            }
        }
        else if (version == 6 && gsoType != VirtioNetHeader.GsoTcpV4)
        {
            // With extension headers the transport header starts at csum_start (always set with GSO).
            bool needsCsum = (header.Flags & VirtioNetHeader.FlagNeedsCsum) != 0;
            l4 = needsCsum ? header.CsumStart : 40;
            if (l4 < 40 || (l4 == 40 && packet.Length >= 40 && packet[6] != protocol))
            {
                return OffloadStatus.Malformed;
            }
        }
        else
        {
            return OffloadStatus.Malformed;
        }
        int headerLength;
        if (udp)
        {
            headerLength = l4 + 8;
        }
        else
        {
            if (l4 + 20 > packet.Length)
            {
                return OffloadStatus.Malformed;
            }
            int dataOffset = (packet[l4 + 12] >> 4) * 4;
            if (dataOffset < 20)
            {
                return OffloadStatus.Malformed;
            }
            headerLength = l4 + dataOffset;
        }
        int payload = packet.Length - headerLength;
        if (header.GsoSize == 0 || payload <= 0)
        {
            return OffloadStatus.Malformed;
        }
        int l4Length = packet.Length - l4;
        if ((header.Flags & VirtioNetHeader.FlagNeedsCsum) != 0)
        {
            // CHECKSUM_PARTIAL: the field holds the super-packet's pseudo-header sum, which the kernel's
            // tcp_gso_segment and __udp_gso_segment adjust for each segment's length rather than
            // recompute from the IP header: its destination is the final one, which a routing header
            // (RFC 8200 section 8.1) or an IPv4 source route option (Linux sums the connection's
            // address, not the first hop's) puts elsewhere.
            ushort partial = BinaryPrimitives.ReadUInt16BigEndian(packet[(l4 + (udp ? 6 : 16))..]);
            _pseudoHeaderBase = InternetChecksum.Combine(
                InternetChecksum.Combine(partial, (ushort)~(ushort)l4Length), (ushort)~(ushort)(l4Length >> 16));
        }
        else
        {
            _pseudoHeaderBase = version == 6
                ? InternetChecksum.PseudoHeaderSum(packet.Slice(8, 16), packet.Slice(24, 16), protocol, 0)
                : InternetChecksum.PseudoHeaderSum(packet.Slice(12, 4), packet.Slice(16, 4), protocol, 0);
        }
        _packetLength = packet.Length;
        _l4Offset = l4;
        _headerLength = headerLength;
        _segmentSize = header.GsoSize;
        _segmentCount = (payload + _segmentSize - 1) / _segmentSize;
        _next = 0;
        _isIpv6 = version == 6;
        _isUdp = udp;
        return OffloadStatus.Ok;
    }

    /// <summary>
    /// Writes the next segment into <paramref name="destination"/> and returns its length, or 0 if
    /// none is pending. <paramref name="packet"/> must be the span given to <see cref="Begin"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The destination is shorter than <see cref="MaxSegmentLength"/> needs.</exception>
    public int NextSegment(ReadOnlySpan<byte> packet, Span<byte> destination)
    {
        if (_next >= _segmentCount)
        {
            return 0;
        }
        if (packet.Length != _packetLength)
        {
            throw new ArgumentException($"the super-packet passed is {packet.Length} bytes, Begin saw {_packetLength}", nameof(packet));
        }
        int index = _next;
        int payloadOffset = _headerLength + index * _segmentSize;
        int payloadLength = Math.Min(_segmentSize, _packetLength - payloadOffset);
        int length = _headerLength + payloadLength;
        if (destination.Length < length)
        {
            throw new ArgumentException($"segment of {length} bytes does not fit a destination of {destination.Length}", nameof(destination));
        }
        packet[.._headerLength].CopyTo(destination);
        packet.Slice(payloadOffset, payloadLength).CopyTo(destination[_headerLength..]);
        Span<byte> segment = destination[..length];
        int l4 = _l4Offset;
        int l4Length = length - l4;
        bool last = index == _segmentCount - 1;

        if (_isIpv6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(segment[4..], (ushort)(length - 40));
        }
        else
        {
            int ihl = l4;
            BinaryPrimitives.WriteUInt16BigEndian(segment[2..], (ushort)length);
            ushort id = BinaryPrimitives.ReadUInt16BigEndian(packet[4..]);
            BinaryPrimitives.WriteUInt16BigEndian(segment[4..], (ushort)(id + index));
            segment[10] = 0;
            segment[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(segment[10..], InternetChecksum.Finish(InternetChecksum.Sum(segment[..ihl])));
        }

        int checksumAt;
        if (_isUdp)
        {
            BinaryPrimitives.WriteUInt16BigEndian(segment[(l4 + 4)..], (ushort)l4Length);
            checksumAt = l4 + 6;
        }
        else
        {
            uint sequence = BinaryPrimitives.ReadUInt32BigEndian(packet[(l4 + 4)..]);
            BinaryPrimitives.WriteUInt32BigEndian(segment[(l4 + 4)..], unchecked(sequence + (uint)(index * _segmentSize)));
            byte flags = segment[l4 + 13];
            if (!last)
            {
                flags &= unchecked((byte)~(TcpFin | TcpPsh));
            }
            if (index != 0)
            {
                flags &= unchecked((byte)~TcpCwr);
            }
            segment[l4 + 13] = flags;
            checksumAt = l4 + 16;
        }
        segment[checksumAt] = 0;
        segment[checksumAt + 1] = 0;
        ushort sum = InternetChecksum.Combine(InternetChecksum.Combine(_pseudoHeaderBase, (ushort)l4Length), (ushort)(l4Length >> 16));
        ushort checksum = InternetChecksum.Finish(InternetChecksum.Sum(segment[l4..], sum));
        if (checksum == 0 && _isUdp)
        {
            checksum = 0xFFFF; // RFC 768
        }
        BinaryPrimitives.WriteUInt16BigEndian(segment[checksumAt..], checksum);
        _next++;
        return length;
    }
}
