using Tmds.Linux;

namespace Firezone.Actors.Native.Tests;

/// <summary>LinuxUdpSocket.SetMark: the UAPI's fwmark on the socket (SO_MARK).</summary>
public sealed unsafe class UdpSocketMarkTests
{
    [Fact]
    public void The_mark_is_set_on_the_socket_and_0_clears_it()
    {
        using var ns = new NetworkNamespace();
        using var socket = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        socket.SetMark(0xca6c);
        Assert.Equal(0xca6cu, ReadMark(socket));
        socket.SetMark(0);
        Assert.Equal(0u, ReadMark(socket));
    }

    /// <summary>
    /// EPERM for real: the calling thread drops CAP_NET_ADMIN and CAP_NET_RAW (newer kernels take
    /// either for SO_MARK) from its effective set, then sets a mark.
    /// </summary>
    [Fact]
    public void Without_CAP_NET_ADMIN_the_user_is_told_to_run_as_root()
    {
        using var ns = new NetworkNamespace();
        using var socket = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        var error = Assert.Throws<UdpSocketException>(() => ns.RunInside(() =>
        {
            ThreadCapabilities.DropEffective(ThreadCapabilities.CAP_NET_ADMIN);
            ThreadCapabilities.DropEffective(CAP_NET_RAW);
            socket.SetMark(51820);
            return 0;
        }));
        Assert.Equal("setting fwmark 0xca6c on the UDP socket needs CAP_NET_ADMIN (run as root)", error.Message);
        Assert.Equal(LibC.EPERM, error.Errno);
        Assert.Equal(0u, ReadMark(socket));
    }

    private const int CAP_NET_RAW = 13;

    private static uint ReadMark(LinuxUdpSocket socket)
    {
        uint mark = 0;
        socklen_t length = sizeof(uint);
        Assert.Equal(0, LibC.getsockopt(socket.Handle.Fd, LibC.SOL_SOCKET, LibC.SO_MARK, &mark, &length));
        return mark;
    }
}
