using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// A host with several addresses answers from the one it was contacted at, as wireguard-go and the
/// kernel's WireGuard do: a received datagram carries the local address it arrived at
/// (IP_PKTINFO / IPV6_PKTINFO), and a datagram sent with that <see cref="PacketBuffer.LocalAddress"/>
/// leaves from it. Otherwise the kernel picks the source by its routes, and a Client behind a stateful
/// firewall that contacted the other address drops the reply. Each test runs in a network namespace
/// of its own, with the addresses on its loopback.
/// </summary>
public sealed class UdpReplySourceTests
{
    [Theory]
    [InlineData("127.0.0.1", "127.0.0.2")] // 127/8 is local: replies to .1 would leave from .1
    [InlineData("fd00::1", "fd00::2")] // a reply to fd00::1 would leave from fd00::1 (same address first)
    public void A_reply_leaves_from_the_address_the_request_arrived_at(string client, string server)
    {
        using var ns = new NetworkNamespace();
        AddAddresses(ns, "fd00::1", "fd00::2");
        var pool = new PacketBufferPool();
        using var serverSocket = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        using var clientSocket = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));

        var request = UdpTestKit.Datagram(pool, 1, 64, Ecn.Ect0, UdpTestKit.Endpoint(server, serverSocket.LocalPort));
        request.LocalAddress = UdpTestKit.Endpoint(client, 0);
        Assert.Equal(1, clientSocket.SendBatch([request]));
        request.Return();

        var arrived = Assert.Single(UdpTestKit.ReceiveExactly(serverSocket, pool, 1));
        Assert.Equal(UdpTestKit.Endpoint(server, 0), arrived.LocalAddress);
        Assert.Equal(UdpTestKit.Endpoint(client, clientSocket.LocalPort), arrived.Endpoint);
        Assert.Equal(Ecn.Ect0, arrived.Ecn);

        // The reply goes back where the request came from, from where it arrived.
        var reply = UdpTestKit.Datagram(pool, 2, 64, Ecn.Ce, arrived.Endpoint);
        reply.LocalAddress = arrived.LocalAddress;
        arrived.Return();
        Assert.Equal(1, serverSocket.SendBatch([reply]));
        reply.Return();

        var back = Assert.Single(UdpTestKit.ReceiveExactly(clientSocket, pool, 1));
        Assert.Equal(UdpTestKit.Endpoint(server, serverSocket.LocalPort), back.Endpoint);
        Assert.Equal(UdpTestKit.Endpoint(client, 0), back.LocalAddress);
        Assert.Equal(Ecn.Ce, back.Ecn);
        Assert.Equal(2, UdpTestKit.NumberOf(back));
        back.Return();
        Assert.Equal(0, serverSocket.SourcesDropped);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_local_address_that_is_gone_is_dropped_and_the_datagrams_leave_from_the_kernels_choice(bool gso)
    {
        using var ns = new NetworkNamespace();
        AddAddresses(ns, "fd00::1");
        var pool = new PacketBufferPool();
        using var receiver = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions { UseGso = gso }));
        var to = UdpTestKit.Endpoint("fd00::1", receiver.LocalPort);
        var gone = UdpTestKit.Endpoint("fd00::9", 0); // never on this host: EINVAL
        // Three alike datagrams: one GSO send (ECN, source and UDP_SEGMENT cmsgs) when GSO is on.
        PacketBuffer[] datagrams =
        [
            UdpTestKit.Datagram(pool, 1, 300, Ecn.Ect1, to),
            UdpTestKit.Datagram(pool, 2, 300, Ecn.Ect1, to),
            UdpTestKit.Datagram(pool, 3, 300, Ecn.Ect1, to),
        ];
        foreach (var datagram in datagrams)
        {
            datagram.LocalAddress = gone;
        }
        var unsent = new int[3];
        Assert.Equal(3, sender.SendBatch(datagrams, unsent));
        Assert.Equal([0, 0, 0], unsent);
        Assert.Equal(gso ? 1 : 3, sender.SourcesDropped);
        Assert.Equal(0, sender.GsoRefused); // the source went, the GSO send stayed one
        foreach (var datagram in datagrams)
        {
            datagram.Return();
        }

        var received = UdpTestKit.ReceiveExactly(receiver, pool, 3);
        Assert.Equal([1, 2, 3], received.Select(UdpTestKit.NumberOf).Order());
        Assert.All(received, b => Assert.Equal(UdpTestKit.Endpoint("fd00::1", sender.LocalPort), b.Endpoint));
        Assert.All(received, b => Assert.Equal(Ecn.Ect1, b.Ecn));
        received.ForEach(b => b.Return());
    }

    private static void AddAddresses(NetworkNamespace ns, params string[] addresses)
    {
        foreach (var address in addresses)
        {
            var (code, output) = ns.Exec(TimeSpan.FromSeconds(10), "ip", "-6", "address", "add", address + "/128", "dev", "lo", "nodad");
            Assert.True(code == 0, $"ip address add {address}: {output}");
        }
    }
}
