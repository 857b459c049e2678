using System.Text;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// Interface settings through the classic SIOC* ioctls on an AF_INET datagram socket (netdevice(7)).
/// They act in the network namespace of the calling thread. Addresses and routes are left to
/// <c>ip</c>(8) (or netlink later): the SIOC address ioctls cover IPv4 only.
/// </summary>
public static unsafe class NetworkInterfaceControl
{
    public static void SetMtu(string name, int mtu)
    {
        If.ifreq request = Request(name);
        request.ifr_mtu = mtu;
        Control(name, LibC.SIOCSIFMTU, &request, $"setting MTU {mtu} on {name}");
    }

    public static int GetMtu(string name)
    {
        If.ifreq request = Request(name);
        Control(name, LibC.SIOCGIFMTU, &request, $"reading the MTU of {name}");
        return request.ifr_mtu;
    }

    /// <summary>Whether an interface of this name exists in the calling thread's network namespace.</summary>
    public static bool Exists(string name)
    {
        try
        {
            GetMtu(name);
            return true;
        }
        catch (TunDeviceException e) when (e.Errno == LibC.ENODEV)
        {
            return false;
        }
    }

    /// <summary>Sets IFF_UP (what <c>ip link set NAME up</c> does).</summary>
    public static void SetUp(string name)
    {
        If.ifreq request = Request(name);
        Control(name, LibC.SIOCGIFFLAGS, &request, $"reading the flags of {name}");
        request.ifr_flags |= If.IFF_UP;
        Control(name, LibC.SIOCSIFFLAGS, &request, $"bringing {name} up");
    }

    private static If.ifreq Request(string name)
    {
        If.ifreq request = default;
        int bytes = Encoding.UTF8.GetByteCount(name);
        if (bytes == 0 || bytes > If.IFNAMSIZ - 1)
        {
            throw new TunDeviceException($"interface name '{name}' must be 1 to {If.IFNAMSIZ - 1} bytes");
        }
        Encoding.UTF8.GetBytes(name, new Span<byte>(request.ifr_name, If.IFNAMSIZ));
        return request;
    }

    private static void Control(string name, int command, If.ifreq* request, string what)
    {
        int fd = LibC.socket(LibC.AF_INET, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            int socketErrno = LibC.errno;
            throw new TunDeviceException($"{what}: cannot open a control socket: {Errno.Describe(socketErrno)}", socketErrno);
        }
        try
        {
            if (LibC.ioctl(fd, command, request) < 0)
            {
                int errno = LibC.errno;
                string reason = errno == LibC.EPERM ? "needs CAP_NET_ADMIN (run as root)"
                    : errno == LibC.ENODEV ? $"there is no interface {name}"
                    : errno == LibC.EINVAL && command == LibC.SIOCSIFMTU ? "the MTU is out of range for this interface"
                    : Errno.Describe(errno);
                throw new TunDeviceException($"{what} failed: {reason}", errno);
            }
        }
        finally
        {
            LibC.close(fd);
        }
    }
}
