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
    [InlineData("127.0.0.1", "127.0.0.2", UdpSocketFamily.DualStack)] // 127/8 is local: replies to .1 would leave from .1
    [InlineData("127.0.0.1", "127.0.0.2", UdpSocketFamily.IPv4Only)] // IP_PKTINFO instead of IPV6_PKTINFO
    [InlineData("fd00::1", "fd00::2", UdpSocketFamily.DualStack)] // a reply to fd00::1 would leave from fd00::1 (same address first)
    public void A_reply_leaves_from_the_address_the_request_arrived_at(string client, string server, UdpSocketFamily family)
    {
        using var ns = new NetworkNamespace();
        AddAddresses(ns, "fd00::1", "fd00::2");
        var pool = new PacketBufferPool();
        var options = new UdpBatchSocketOptions { Family = family };
        using var serverSocket = ns.RunInside(() => new LinuxUdpSocket(options));
        using var clientSocket = ns.RunInside(() => new LinuxUdpSocket(options));

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
    [InlineData("fd00::1", "fd00::9", true)] // IPv6: the kernel says EINVAL
    [InlineData("fd00::1", "fd00::9", false)]
    [InlineData("127.0.0.1", "10.9.9.9", true)] // IPv4 (mapped on the dual-stack socket): ENETUNREACH
    [InlineData("127.0.0.1", "10.9.9.9", false)]
    public void A_local_address_that_is_gone_is_dropped_and_the_datagrams_leave_from_the_kernels_choice(string to, string gone, bool gso)
    {
        using var ns = new NetworkNamespace();
        AddAddresses(ns, "fd00::1");
        var pool = new PacketBufferPool();
        using var receiver = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions { UseGso = gso }));
        var destination = UdpTestKit.Endpoint(to, receiver.LocalPort);
        // Three alike datagrams: one GSO send (ECN, source and UDP_SEGMENT cmsgs) when GSO is on.
        SendThree(pool, sender, destination, UdpTestKit.Endpoint(gone, 0), 1);
        Assert.Equal(gso ? 1 : 3, sender.SourcesDropped);
        // IPv4: the source went, the GSO send stayed one. IPv6: EINVAL is also how older kernels refuse
        // a GSO send, so the run went one by one first, keeping the source, and the first datagram
        // refused for it dropped it for the rest.
        Assert.Equal(gso && to.Contains(':') ? 1 : 0, sender.GsoRefused);
        AssertReceived(receiver, pool, UdpTestKit.Endpoint(to, sender.LocalPort), 1);

        // The address is remembered as gone: the next sends from it go from the kernel's choice at once.
        SendThree(pool, sender, destination, UdpTestKit.Endpoint(gone, 0), 11);
        Assert.Equal(gso ? 1 : 3, sender.SourcesDropped);
        AssertReceived(receiver, pool, UdpTestKit.Endpoint(to, sender.LocalPort), 11);
    }

    [Fact]
    public void An_address_that_came_back_is_used_again_once_a_datagram_arrives_at_it()
    {
        using var ns = new NetworkNamespace();
        AddAddresses(ns, "fd00::1");
        var pool = new PacketBufferPool();
        using var receiver = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions { UseGso = false }));
        var destination = UdpTestKit.Endpoint("fd00::1", receiver.LocalPort);
        var source = UdpTestKit.Endpoint("fd00::9", 0);
        SendThree(pool, sender, destination, source, 1);
        Assert.Equal(3, sender.SourcesDropped);
        AssertReceived(receiver, pool, UdpTestKit.Endpoint("fd00::1", sender.LocalPort), 1);

        // fd00::9 is back, and a datagram arrives at it (the peer's next one).
        AddAddresses(ns, "fd00::9");
        var hello = UdpTestKit.Datagram(pool, 50, 32, Ecn.NotEct, UdpTestKit.Endpoint("fd00::9", sender.LocalPort));
        Assert.Equal(1, receiver.SendBatch([hello]));
        hello.Return();
        var arrived = Assert.Single(UdpTestKit.ReceiveExactly(sender, pool, 1));
        Assert.Equal(source, arrived.LocalAddress);
        arrived.Return();

        SendThree(pool, sender, destination, source, 21);
        Assert.Equal(3, sender.SourcesDropped);
        AssertReceived(receiver, pool, UdpTestKit.Endpoint("fd00::9", sender.LocalPort), 21);
    }

    /// <summary>
    /// After a route change a local address may still be the host's but no longer the way to the
    /// peer (a Client's default route moved to its other uplink): the socket sends from the kernel's
    /// choice until a datagram arrives at that address again, and from it once one has.
    /// </summary>
    [Theory]
    [InlineData("fd00::1", "fd00::2", true)] // the kernel's choice for fd00::1 is fd00::1 itself (RFC 6724 rule 1)
    [InlineData("fd00::1", "fd00::2", false)]
    [InlineData("127.0.0.1", "127.0.0.2", true)] // IPv4-mapped on the dual-stack socket: the same form received and sent
    [InlineData("127.0.0.1", "127.0.0.2", false)]
    public void After_a_route_change_a_local_address_is_sent_from_again_only_once_a_datagram_arrives_at_it(string kernels, string other, bool gso)
    {
        using var ns = new NetworkNamespace();
        AddAddresses(ns, "fd00::1", "fd00::2");
        var pool = new PacketBufferPool();
        using var receiver = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions { UseGso = gso }));
        var destination = UdpTestKit.Endpoint(kernels, receiver.LocalPort);
        var source = UdpTestKit.Endpoint(other, 0);
        SendThree(pool, sender, destination, source, 1);
        AssertReceived(receiver, pool, UdpTestKit.Endpoint(other, sender.LocalPort), 1);

        sender.RoutesChanged();
        SendThree(pool, sender, destination, source, 11);
        AssertReceived(receiver, pool, UdpTestKit.Endpoint(kernels, sender.LocalPort), 11);

        // A datagram arrives at the other address (the peer's next one): it is the way again.
        var hello = UdpTestKit.Datagram(pool, 50, 32, Ecn.NotEct, UdpTestKit.Endpoint(other, sender.LocalPort));
        Assert.Equal(1, receiver.SendBatch([hello]));
        hello.Return();
        var arrived = Assert.Single(UdpTestKit.ReceiveExactly(sender, pool, 1));
        Assert.Equal(source, arrived.LocalAddress);
        arrived.Return();
        SendThree(pool, sender, destination, arrived.LocalAddress, 21);
        AssertReceived(receiver, pool, UdpTestKit.Endpoint(other, sender.LocalPort), 21);
        Assert.Equal(0, sender.SourcesDropped); // none was refused: it was never tried
    }

    private static void SendThree(PacketBufferPool pool, LinuxUdpSocket sender, UdpEndpoint destination, UdpEndpoint source, int firstNumber)
    {
        PacketBuffer[] datagrams =
        [
            UdpTestKit.Datagram(pool, firstNumber, 300, Ecn.Ect1, destination),
            UdpTestKit.Datagram(pool, firstNumber + 1, 300, Ecn.Ect1, destination),
            UdpTestKit.Datagram(pool, firstNumber + 2, 300, Ecn.Ect1, destination),
        ];
        foreach (var datagram in datagrams)
        {
            datagram.LocalAddress = source;
        }
        var unsent = new int[3];
        Assert.Equal(3, sender.SendBatch(datagrams, unsent));
        Assert.Equal([0, 0, 0], unsent);
        foreach (var datagram in datagrams)
        {
            datagram.Return();
        }
    }

    private static void AssertReceived(LinuxUdpSocket receiver, PacketBufferPool pool, UdpEndpoint from, int firstNumber)
    {
        var received = UdpTestKit.ReceiveExactly(receiver, pool, 3);
        Assert.Equal([firstNumber, firstNumber + 1, firstNumber + 2], received.Select(UdpTestKit.NumberOf).Order());
        Assert.All(received, b => Assert.Equal(from, b.Endpoint));
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
