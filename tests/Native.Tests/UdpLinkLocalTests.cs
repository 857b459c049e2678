using System.Net;
using System.Net.Sockets;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// An IPv6 link-local source (fe80::/10) is only an address together with its interface: the socket
/// keeps the sin6_scope_id of what it receives and sends the reply with it, so the reply leaves by
/// the link the datagram came on, even when another link also has an fe80::/64 route (and would be
/// the kernel's pick for scope 0).
/// </summary>
public sealed class UdpLinkLocalTests
{
    [Fact]
    public void A_reply_to_a_link_local_source_leaves_by_the_link_it_came_on()
    {
        using var a = new NetworkNamespace();
        using var b = new NetworkNamespace();
        string va = "fzla" + NetworkNamespace.UniqueSuffix(), vb = "fzlb" + NetworkNamespace.UniqueSuffix();
        // In B, first a pair of other links with fe80::/64 routes: scope 0 would go out by one of them.
        Command.Check("ip", "-n", b.Name, "link", "add", "fzld0", "type", "veth", "peer", "name", "fzld1");
        foreach (string device in new[] { "fzld0", "fzld1" })
        {
            Command.Check("ip", "-n", b.Name, "addr", "add", device == "fzld0" ? "fe80::c/64" : "fe80::d/64", "dev", device, "nodad");
            Command.Check("ip", "-n", b.Name, "link", "set", device, "up");
        }
        uint indexInA = LinkLocalPair(a, b, va, vb);
        uint indexInB = IndexOf(b, vb);

        using LinuxUdpSocket server = b.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions { ListenPort = 0 }));
        using Socket client = Client(a);
        var pool = new PacketBufferPool(2048, 64, 128);
        PacketBuffer reply = Hello(client, server, indexInA, pool);
        Assert.Equal(indexInB, reply.Endpoint.ScopeId);
        Assert.Equal($"[fe80::a%{indexInB}]:{((IPEndPoint)client.LocalEndPoint!).Port}", reply.Endpoint.ToString());
        Assert.Equal(1, server.SendBatch([reply]));
        reply.Return();

        var bytes = new byte[16];
        Assert.Equal(5, client.Receive(bytes));
        Assert.Equal("hello"u8.ToArray(), bytes[..5]);
        Assert.Equal(0, pool.Outstanding);
    }

    /// <summary>
    /// A reply to a link-local peer is sent from the link-local address it arrived at, with
    /// IPV6_PKTINFO naming that interface. When the interface is deleted (a USB NIC unplugged, a VLAN
    /// or veth removed), ip6_datagram_send_ctl refuses the cmsg with ENODEV; without the cmsg the
    /// same send is EADDRNOTAVAIL, a per-datagram refusal. ENODEV is in neither IsSourceRefusal nor
    /// IsPerDatagramError, so SendBatch threw UdpSocketException and the tunnel stopped (found by a
    /// review of the native layer, 2026-11-27).
    /// </summary>
    [Fact]
    public void A_reply_from_a_link_local_address_whose_interface_is_gone_does_not_kill_the_socket()
    {
        using var a = new NetworkNamespace();
        using var b = new NetworkNamespace();
        string va = "fzla" + NetworkNamespace.UniqueSuffix(), vb = "fzlb" + NetworkNamespace.UniqueSuffix();
        uint indexInA = LinkLocalPair(a, b, va, vb);

        using LinuxUdpSocket server = b.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions { ListenPort = 0 }));
        using Socket client = Client(a);
        var pool = new PacketBufferPool(2048, 64, 128);
        PacketBuffer reply = Hello(client, server, indexInA, pool);
        Assert.False(reply.LocalAddress.IsNone); // fe80::b with vb's index: the reply goes from it

        Command.Check("ip", "-n", b.Name, "link", "del", vb); // the link goes away (both ends)

        try
        {
            var unsent = new int[1];
            // Expected: the datagram is refused and counted (or sent from the kernel's choice), the socket stays usable.
            int sent = server.SendBatch([reply], unsent);
            Assert.Equal(0, sent);
            Assert.Equal(1, server.SendErrors + server.SendDropped);
        }
        finally
        {
            reply.Return();
        }
        Assert.Equal(0, pool.Outstanding);
    }

    /// <summary>A veth pair <paramref name="va"/> in A to <paramref name="vb"/> in B, fe80::a and fe80::b, up; A's end's index.</summary>
    private static uint LinkLocalPair(NetworkNamespace a, NetworkNamespace b, string va, string vb)
    {
        Command.Check("ip", "-n", a.Name, "link", "add", va, "type", "veth", "peer", "name", vb, "netns", b.Name);
        Command.Check("ip", "-n", a.Name, "addr", "add", "fe80::a/64", "dev", va, "nodad");
        Command.Check("ip", "-n", b.Name, "addr", "add", "fe80::b/64", "dev", vb, "nodad");
        Command.Check("ip", "-n", a.Name, "link", "set", va, "up");
        Command.Check("ip", "-n", b.Name, "link", "set", vb, "up");
        return IndexOf(a, va);
    }

    private static uint IndexOf(NetworkNamespace ns, string device) =>
        uint.Parse(Command.Check("ip", "netns", "exec", ns.Name, "cat", $"/sys/class/net/{device}/ifindex").Trim());

    /// <summary>A plain IPv6 UDP socket in <paramref name="ns"/>, on a random port.</summary>
    private static Socket Client(NetworkNamespace ns) => ns.RunInside(() =>
    {
        var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 2000 };
        socket.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
        return socket;
    });

    /// <summary>"hello" from <paramref name="client"/> to fe80::b by A's link; the datagram as <paramref name="server"/> read it.</summary>
    private static PacketBuffer Hello(Socket client, LinuxUdpSocket server, uint indexInA, PacketBufferPool pool)
    {
        client.SendTo("hello"u8.ToArray(), new IPEndPoint(new IPAddress(IPAddress.Parse("fe80::b").GetAddressBytes(), indexInA), server.LocalPort));
        return UdpTestKit.ReceiveExactly(server, pool, 1)[0];
    }
}
