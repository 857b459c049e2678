using System.Text.RegularExpressions;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// The outer IPv4 datagrams leave without DF, alone or in a GSO run, as the kernel's WireGuard sends
/// them (send4: udp_tunnel_xmit_skb with df 0). With the socket default (IP_PMTUDISC_WANT) the kernel
/// set DF on a datagram sent alone but not on a GSO send larger than the route's MTU
/// (__ip_make_skb), so on a path whose routers drop the ICMP "fragmentation needed" (a PMTU black
/// hole) bulk traffic went through, fragmented by the router, while the same packets sent one at a
/// time (a ping, a paced TCP flow) vanished: iperf3 ran at 1.5 Gbit/s where one at 5 Mbit/s stalled.
/// </summary>
public sealed class UdpDontFragmentTests
{
    [Theory]
    [InlineData("127.0.0.1", UdpSocketFamily.IPv4Only)]
    [InlineData("127.0.0.1", UdpSocketFamily.DualStack)]
    public void IPv4_datagrams_leave_without_DF_alone_and_in_a_GSO_run(string address, UdpSocketFamily family)
    {
        using var ns = new NetworkNamespace();
        Command.Check("ip", "-n", ns.Name, "link", "set", "lo", "mtu", "1500");
        var options = new UdpBatchSocketOptions { Family = family };
        using var receiver = ns.RunInside(() => new LinuxUdpSocket(options));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(options));
        string port = receiver.LocalPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Command.Check("ip", "netns", "exec", ns.Name, "nft", "add table ip fzt; "
            + "add chain ip fzt out { type filter hook output priority 0; }; "
            + $"add rule ip fzt out udp dport {port} ip frag-off & 0x4000 != 0 counter; "
            + $"add rule ip fzt out udp dport {port} counter");
        var pool = new PacketBufferPool(preallocate: 64);
        UdpEndpoint to = UdpTestKit.Endpoint(address, receiver.LocalPort);

        // One datagram alone (a ping through the tunnel), then a run of four (one GSO send).
        PacketBuffer[] single = [UdpTestKit.Datagram(pool, 0, 1400, Ecn.NotEct, to)];
        Assert.Equal(1, sender.SendBatch(single));
        PacketBuffer[] run = new PacketBuffer[4];
        for (int i = 0; i < run.Length; i++)
        {
            run[i] = UdpTestKit.Datagram(pool, 1 + i, 1400, Ecn.NotEct, to);
        }
        Assert.Equal(4, sender.SendBatch(run));
        UdpGsoGroLoopbackTests.ReturnAll(single);
        UdpGsoGroLoopbackTests.ReturnAll(run);
        UdpGsoGroLoopbackTests.ReturnAll(UdpTestKit.ReceiveExactly(receiver, pool, 5));

        string counters = Command.Check("ip", "netns", "exec", ns.Name, "nft", "list", "chain", "ip", "fzt", "out");
        long[] packets = Regex.Matches(counters, @"counter packets (\d+)").Select(m => long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(2, packets.Length);
        Assert.True(packets[1] >= 2, $"the datagrams were not seen leaving: {counters}");
        Assert.True(packets[0] == 0, $"{packets[0]} of {packets[1]} sends left with DF: {counters}");
        Assert.Equal(0, pool.Outstanding);
    }
}
