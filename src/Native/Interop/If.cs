using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names from the headers, on purpose

namespace Firezone.Actors.Native.Interop;

/// <summary><c>&lt;net/if.h&gt;</c>: <c>struct ifreq</c> and the interface flags the TUN code needs (Tmds.LibC has neither).</summary>
internal static class If
{
    /// <summary>Interface names hold at most 15 bytes plus the terminating NUL.</summary>
    internal const int IFNAMSIZ = 16;

    internal const short IFF_UP = 0x1;

    /// <summary>
    /// <c>struct ifreq</c>: the name, then a union. On 64-bit Linux the union is 24 bytes (<c>struct
    /// ifmap</c>), 40 in all; a 32-bit kernel copies only its 32, so the larger size is safe there too.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    internal unsafe struct ifreq
    {
        [FieldOffset(0)] public fixed byte ifr_name[IFNAMSIZ];
        [FieldOffset(16)] public short ifr_flags;
        [FieldOffset(16)] public int ifr_mtu;
        [FieldOffset(16)] public int ifr_ifindex;
    }
}
