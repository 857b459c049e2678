using Tmds.Linux;

namespace Firezone.Actors.Native;

public sealed unsafe partial class LinuxUdpSocket
{
    /// <summary>
    /// Sets SO_MARK (the UAPI's fwmark) on the socket: a policy rule (wg-quick's
    /// <c>not fwmark T table T</c>) then keeps the tunnel's own datagrams out of the tunnel. 0 clears it.
    /// </summary>
    /// <exception cref="UdpSocketException">With a message meant for the user (SO_MARK needs CAP_NET_ADMIN).</exception>
    public void SetMark(uint mark)
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            if (LibC.setsockopt(_fd.Fd, LibC.SOL_SOCKET, LibC.SO_MARK, &mark, sizeof(uint)) < 0)
            {
                int errno = LibC.errno;
                string what = $"setting fwmark 0x{mark:x} on the UDP socket";
                throw new UdpSocketException(errno == LibC.EPERM ? $"{what} needs CAP_NET_ADMIN (run as root)" : $"{what} failed: {Errno.Describe(errno)}", errno);
            }
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }
}
