using System.Net;
using System.Net.Sockets;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// Without IFF_VNET_HDR (offloads off, or a kernel that refuses them) a TUN read copies what fits the
/// buffer. A packet longer than the buffer (the MTU was raised past it, before the daemon rebuilds on
/// larger buffers) is dropped and counted, never handed on cut short; the packets after it still read.
/// </summary>
public sealed class TunPlainReadTests
{
    [Theory]
    [InlineData(1980)] // a 2008-byte IPv4 packet: longer than MaxPacketLength (1984), shorter than the array
    [InlineData(2100)] // a 2128-byte one: longer than the whole array
    public void A_packet_longer_than_the_buffer_is_dropped_and_counted_and_the_next_one_reads(int payload)
    {
        using var ns = new NetworkNamespace();
        // No IPv6 router solicitations on the device: the reads see only the test's datagrams.
        ns.Exec(TimeSpan.FromSeconds(5), "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
        string name = "fzr" + NetworkNamespace.UniqueSuffix();
        using LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = 3000, Offloads = false }));
        Assert.Equal(TunOffloads.None, tun.Offloads);
        Command.Check("ip", "-n", ns.Name, "addr", "add", "10.213.0.1/24", "dev", name);
        Command.Check("ip", "-n", ns.Name, "route", "add", "10.214.0.0/24", "dev", name);
        var pool = new PacketBufferPool(2048, 4, 16);
        ns.RunInside(() =>
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.SendTo(new byte[payload], new IPEndPoint(IPAddress.Parse("10.214.0.7"), 9));
            socket.SendTo(new byte[100], new IPEndPoint(IPAddress.Parse("10.214.0.7"), 9));
            return 0;
        });
        var batch = new[] { pool.Rent(), pool.Rent() };
        try
        {
            int read = 0;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while (read == 0 && DateTime.UtcNow < deadline)
            {
                read = tun.WaitReadable(100) ? tun.TryReadBatch(batch) : 0;
            }
            Assert.Equal(1, read); // only the small one
            Assert.Equal(128, batch[0].Length); // 20 + 8 + 100
            Assert.Equal(128, (batch[0].Data[2] << 8) | batch[0].Data[3]);
            Assert.Equal(1, tun.ReadDropped);
        }
        finally
        {
            batch[0].Return();
            batch[1].Return();
        }
        Assert.Equal(0, pool.Outstanding);
    }
}
