using System.Buffers.Binary;

namespace Firezone.Actors.Engine.Offload;

/// <summary>
/// struct virtio_net_hdr (virtio 1.x specification section 5.1.6, Linux
/// include/uapi/linux/virtio_net.h), the 10-byte header a TUN device opened with IFF_VNET_HDR puts in
/// front of every packet. Fields are in the host's byte order for a legacy (non-virtio-1) device,
/// which is what TUN uses unless TUNSETVNETLE/BE says otherwise; this engine targets little-endian
/// hosts (x86-64, arm64).
/// </summary>
public struct VirtioNetHeader
{
    /// <summary>sizeof(struct virtio_net_hdr), without num_buffers (no VIRTIO_NET_F_MRG_RXBUF).</summary>
    public const int Size = 10;

    /// <summary>VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum from <see cref="CsumStart"/> to the end, store at CsumStart + CsumOffset.</summary>
    public const byte FlagNeedsCsum = 1;

    /// <summary>VIRTIO_NET_HDR_F_DATA_VALID: the checksum has been verified.</summary>
    public const byte FlagDataValid = 2;

    public const byte GsoNone = 0;
    public const byte GsoTcpV4 = 1;
    /// <summary>VIRTIO_NET_HDR_GSO_UDP: UFO (IP fragmentation), obsolete; not produced with our offload flags.</summary>
    public const byte GsoUdp = 3;
    public const byte GsoTcpV6 = 4;
    /// <summary>VIRTIO_NET_HDR_GSO_UDP_L4: USO, one UDP datagram per gso_size bytes.</summary>
    public const byte GsoUdpL4 = 5;
    /// <summary>VIRTIO_NET_HDR_GSO_ECN: the TCP super-packet has CWR set (only with TUN_F_TSO_ECN).</summary>
    public const byte GsoEcn = 0x80;

    public byte Flags;
    public byte GsoType;
    public ushort HdrLen;
    public ushort GsoSize;
    public ushort CsumStart;
    public ushort CsumOffset;

    public static VirtioNetHeader Read(ReadOnlySpan<byte> source) => new()
    {
        Flags = source[0],
        GsoType = source[1],
        HdrLen = BinaryPrimitives.ReadUInt16LittleEndian(source[2..]),
        GsoSize = BinaryPrimitives.ReadUInt16LittleEndian(source[4..]),
        CsumStart = BinaryPrimitives.ReadUInt16LittleEndian(source[6..]),
        CsumOffset = BinaryPrimitives.ReadUInt16LittleEndian(source[8..]),
    };

    public readonly void Write(Span<byte> destination)
    {
        destination[0] = Flags;
        destination[1] = GsoType;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[2..], HdrLen);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], GsoSize);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], CsumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[8..], CsumOffset);
    }
}
