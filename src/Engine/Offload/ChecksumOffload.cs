using System.Buffers.Binary;

namespace Firezone.Actors.Engine.Offload;

/// <summary>
/// Completes a checksum the kernel left to the device (CHECKSUM_PARTIAL, VIRTIO_NET_HDR_F_NEEDS_CSUM).
/// The field at csum_start + csum_offset already holds the folded pseudo-header sum, so the result is
/// the complement of the sum from csum_start to the end (Linux Documentation/networking/checksum-offloads.rst).
/// </summary>
public static class ChecksumOffload
{
    /// <summary>The csum_offset of the UDP checksum field (RFC 768); TCP's is 16.</summary>
    public const int UdpChecksumOffset = 6;

    public static OffloadStatus Complete(Span<byte> packet, in VirtioNetHeader header)
    {
        if ((header.Flags & VirtioNetHeader.FlagNeedsCsum) == 0)
        {
            return OffloadStatus.Ok;
        }
        int start = header.CsumStart;
        int at = start + header.CsumOffset;
        if (at + 2 > packet.Length)
        {
            return OffloadStatus.Malformed;
        }
        ushort checksum = InternetChecksum.Finish(InternetChecksum.Sum(packet[start..]));
        if (checksum == 0 && header.CsumOffset == UdpChecksumOffset)
        {
            checksum = 0xFFFF; // RFC 768: zero means "no checksum"; its one's-complement twin is sent instead
        }
        BinaryPrimitives.WriteUInt16BigEndian(packet[at..], checksum);
        return OffloadStatus.Ok;
    }
}
