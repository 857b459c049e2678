using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// LinuxTunDevice.Duplicate and LinuxUdpSocket.Duplicate: what a tunnel rebuilt while a reader thread
/// of the old one is still in a call runs on (ActorTunnelControl). The old object keeps its
/// signalled wake-up for that thread; the duplicate has its own, and holds the interface or the
/// port once the old object is disposed.
/// </summary>
public sealed class DescriptorDuplicateTests
{
    [Fact]
    public void A_tun_duplicate_waits_on_its_own_wake_up_and_keeps_the_interface_until_it_is_disposed()
    {
        using var ns = new NetworkNamespace();
        string name = "fzt" + NetworkNamespace.UniqueSuffix();
        LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, BringUp = false }));
        bool? woken = null;
        var reader = new Thread(() => woken = tun.WaitReadable(-1));
        reader.Start();
        Thread.Sleep(100); // let it block in poll

        LinuxTunDevice duplicate = ns.RunInside(tun.Duplicate);
        tun.WakeReader();
        tun.Dispose();
        Assert.True(reader.Join(TimeSpan.FromSeconds(10)), "the reader of the original was not woken");
        Assert.False(woken);

        Assert.Equal(tun.Index, duplicate.Index);
        Assert.Equal(tun.Offloads, duplicate.Offloads);
        Assert.False(duplicate.WaitReadable(0)); // not woken by the original's wake-up
        Assert.Equal(0, Command.Run("ip", "-n", ns.Name, "link", "show", "dev", name).ExitCode); // the interface stays
        duplicate.Dispose();
        bool gone = false;
        for (int attempt = 0; attempt < 50 && !gone; attempt++)
        {
            gone = Command.Run("ip", "-n", ns.Name, "link", "show", "dev", name).ExitCode != 0;
            if (!gone)
            {
                Thread.Sleep(100);
            }
        }
        Assert.True(gone, $"{name} outlived its last descriptor");
    }

    [Fact]
    public void A_socket_duplicate_receives_on_the_port_and_holds_it_until_it_is_disposed()
    {
        using var ns = new NetworkNamespace();
        var pool = new PacketBufferPool();
        var socket = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        int port = socket.LocalPort;
        bool? woken = null;
        var reader = new Thread(() => woken = socket.WaitReadable(-1));
        reader.Start();
        Thread.Sleep(100);

        var duplicate = socket.Duplicate();
        socket.WakeReceiver();
        socket.Dispose();
        Assert.True(reader.Join(TimeSpan.FromSeconds(10)), "the reader of the original was not woken");
        Assert.False(woken);
        Assert.Equal(port, duplicate.LocalPort);
        Assert.Equal(socket.GroEnabled, duplicate.GroEnabled);

        var datagram = UdpTestKit.Datagram(pool, 5, 64, Ecn.Ect1, UdpTestKit.Endpoint("::1", port));
        Assert.Equal(1, sender.SendBatch([datagram]));
        datagram.Return();
        var received = UdpTestKit.ReceiveExactly(duplicate, pool, 1);
        Assert.Equal(5, UdpTestKit.NumberOf(received[0]));
        Assert.Equal(Ecn.Ect1, received[0].Ecn); // the socket's receive options come with it
        received.ForEach(b => b.Return());

        // The port is still the duplicate's, and free once it is disposed.
        Assert.Throws<UdpSocketException>(() => ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions { ListenPort = port })));
        duplicate.Dispose();
        using var again = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions { ListenPort = port }));
        Assert.Equal(port, again.LocalPort);
        Assert.Equal(0, pool.Outstanding);
    }
}
