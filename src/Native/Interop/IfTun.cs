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

    /// <summary>_IOW('T', 208, unsigned int): for IFF_VNET_HDR offloads (performance issue, not used yet).</summary>
    internal const int TUNSETOFFLOAD = 0x400454d0;

    /// <summary>_IOW('T', 216, int): virtio_net_hdr size for IFF_VNET_HDR (performance issue, not used yet).</summary>
    internal const int TUNSETVNETHDRSZ = 0x400454d8;

    internal const short IFF_TUN = 0x0001;
    internal const short IFF_NO_PI = 0x1000;
    internal const short IFF_MULTI_QUEUE = 0x0100;
    internal const short IFF_VNET_HDR = 0x4000;
}
