using System.Runtime.InteropServices;
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

    /// <summary>The index of the interface <paramref name="name"/> (SIOCGIFINDEX); a rename keeps it.</summary>
    public static int GetIndex(string name)
    {
        If.ifreq request = Request(name);
        Control(name, LibC.SIOCGIFINDEX, &request, $"reading the index of {name}");
        return request.ifr_ifindex;
    }

    /// <summary>
    /// The name the interface of <paramref name="index"/> has now (SIOCGIFNAME, what if_indextoname
    /// does). ENODEV once it is deleted or moved to another network namespace.
    /// </summary>
    public static string GetName(int index)
    {
        If.ifreq request = default;
        request.ifr_ifindex = index;
        Control($"with index {index} in this network namespace (deleted, or moved to another)", LibC.SIOCGIFNAME, &request,
            $"reading the name of interface index {index}");
        return Marshal.PtrToStringUTF8((nint)request.ifr_name) ?? string.Empty;
    }

    /// <summary>
    /// The name of the interface of <paramref name="index"/>, or false when no interface in this
    /// network namespace has that index (ENODEV: deleted, or moved to another). Any interface, with
    /// or without addresses and up or down, as if_indextoname(3) finds it.
    /// </summary>
    public static bool TryGetName(int index, out string name)
    {
        try
        {
            name = GetName(index);
            return true;
        }
        catch (TunDeviceException e) when (e.Errno == LibC.ENODEV)
        {
            name = string.Empty;
            return false;
        }
    }

    /// <summary>
    /// The MTU of the interface of <paramref name="index"/>, whatever it is called now (an
    /// administrator may rename it: <c>ip link set NAME name NEW</c>), and that name. SIOCGIFMTU takes
    /// a name, so the name is read by index before and after: a rename in between would have read
    /// another interface of that name, or none, and the read is made again.
    /// </summary>
    public static int GetMtu(int index, out string name)
    {
        var link = GetLink(index);
        name = link.Name;
        return link.Mtu;
    }

    /// <summary>
    /// The name, MTU and administrative state (IFF_UP, what <c>ip link set NAME up/down</c> sets) of
    /// the interface of <paramref name="index"/>, read as <see cref="GetMtu(int, out string)"/> reads
    /// the MTU: by the name it has now, read again after, so a rename in between is read again.
    /// </summary>
    public static LinkState GetLink(int index)
    {
        for (int attempt = 1; ; attempt++)
        {
            string name = GetName(index);
            try
            {
                int mtu = GetMtu(name);
                bool up = (GetFlags(name) & If.IFF_UP) != 0;
                if (GetName(index) == name)
                {
                    return new LinkState(name, mtu, up);
                }
            }
            catch (TunDeviceException e) when (e.Errno == LibC.ENODEV && attempt < RenameRetries)
            {
                // Renamed since its name was read: read it again.
                continue;
            }
            if (attempt >= RenameRetries)
            {
                throw new TunDeviceException($"reading the MTU of interface index {index} failed: it was renamed while being read, {RenameRetries} times", LibC.EAGAIN);
            }
        }
    }

    private static short GetFlags(string name)
    {
        If.ifreq request = Request(name);
        Control(name, LibC.SIOCGIFFLAGS, &request, $"reading the flags of {name}");
        return request.ifr_flags;
    }

    // A rename is rare; one racing every read of a loop of three is a rename loop, reported as such.
    private const int RenameRetries = 3;

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
        request.ifr_flags = (short)(GetFlags(name) | If.IFF_UP);
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
