using Firezone.Actors.Native;
using Tmds.Linux;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// Two descriptor settings the Native project does not expose (yet): TUNSETPERSIST, so the TUN
/// interface (with its addresses and routes) outlives one descriptor while the tunnel restarts,
/// and SO_MARK for the UAPI's fwmark.
/// </summary>
internal static unsafe class LinuxDescriptors
{
    /// <summary>_IOW('T', 203, int), linux/if_tun.h.</summary>
    private const int TUNSETPERSIST = 0x400454cb;

    /// <summary>asm-generic/socket.h.</summary>
    private const int SO_MARK = 36;

    public static void SetPersistent(SafeFileDescriptorHandle tun, bool persistent)
    {
        bool added = false;
        try
        {
            tun.DangerousAddRef(ref added);
            if (LibC.ioctl(tun.Fd, TUNSETPERSIST, (void*)(persistent ? 1 : 0)) < 0)
            {
                throw new TunDeviceException($"TUNSETPERSIST failed (errno {LibC.errno})", LibC.errno);
            }
        }
        finally
        {
            if (added)
            {
                tun.DangerousRelease();
            }
        }
    }

    /// <summary>Returns the errno, 0 on success.</summary>
    public static int SetMark(SafeFileDescriptorHandle socket, uint mark)
    {
        bool added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            return LibC.setsockopt(socket.Fd, LibC.SOL_SOCKET, SO_MARK, &mark, sizeof(uint)) < 0 ? LibC.errno : 0;
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }
}
