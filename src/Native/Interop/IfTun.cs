namespace Firezone.Actors.Native.Interop;

/// <summary><c>&lt;linux/if_tun.h&gt;</c>: the TUN ioctls and flags (Tmds.LibC has none).</summary>
internal static class IfTun
{
    /// <summary>_IOW('T', 202, int)</summary>
    internal const int TUNSETIFF = 0x400454ca;

    /// <summary>_IOW('T', 203, int)</summary>
    internal const int TUNSETPERSIST = 0x400454cb;

    /// <summary>_IOR('T', 210, unsigned int)</summary>
    internal const int TUNGETIFF = unchecked((int)0x800454d2);

    /// <summary>_IOW('T', 208, unsigned int): the offloads the kernel may hand us with IFF_VNET_HDR (TUN_F_*).</summary>
    internal const int TUNSETOFFLOAD = 0x400454d0;

    /// <summary>_IOW('T', 216, int): virtio_net_hdr size for IFF_VNET_HDR.</summary>
    internal const int TUNSETVNETHDRSZ = 0x400454d8;

    /// <summary>_IOW('T', 220, int): the virtio_net_hdr fields are little-endian (otherwise native-endian, see TUNSETVNETLE in tun.c).</summary>
    internal const int TUNSETVNETLE = 0x400454dc;

    /// <summary>_IOR('T', 221, int)</summary>
    internal const int TUNGETVNETLE = unchecked((int)0x800454dd);

    internal const short IFF_TUN = 0x0001;
    internal const short IFF_NO_PI = 0x1000;
    internal const short IFF_MULTI_QUEUE = 0x0100;
    internal const short IFF_VNET_HDR = 0x4000;

    /// <summary>The kernel may leave checksums to us (VIRTIO_NET_HDR_F_NEEDS_CSUM); required by the others.</summary>
    internal const uint TUN_F_CSUM = 0x01;
    internal const uint TUN_F_TSO4 = 0x02;
    internal const uint TUN_F_TSO6 = 0x04;
    internal const uint TUN_F_TSO_ECN = 0x08;
    internal const uint TUN_F_UFO = 0x10;
    /// <summary>UDP segmentation offload (Linux 6.2).</summary>
    internal const uint TUN_F_USO4 = 0x20;
    internal const uint TUN_F_USO6 = 0x40;
}
