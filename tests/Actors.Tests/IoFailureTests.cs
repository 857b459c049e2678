using Akka.Actor;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Native;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>Losing the TUN device or the socket stops the tunnel with a clear reason for the host.</summary>
public sealed class IoFailureTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private (TunnelNode A, TunnelNode B) StartPairWithTraffic()
    {
        var (a, b) = StartPair();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        return (a, b);
    }

    private void ExpectTunnelGone(TunnelNode node, string reasonPrefix)
    {
        var failed = ExpectMsg<TunnelFailed>(Wait);
        Assert.StartsWith(reasonPrefix, failed.Reason);
        var probe = CreateTestProbe();
        probe.Watch(node.Tunnel);
        probe.ExpectTerminated(node.Tunnel, Wait);
        AwaitCondition(() => node.Pool.Outstanding == 0, Wait, $"{node.Name}: {node.Pool.Outstanding} buffers leased after the tunnel failed");
    }

    [Fact]
    public void Losing_the_TUN_device_stops_the_tunnel_and_tells_the_host_why()
    {
        var (a, b) = StartPairWithTraffic();
        a.Tun.FailReads(new TunDeviceException("tun-a: device removed (ENODEV)"));
        ExpectTunnelGone(a, "TUN device lost: tun-a: device removed");
        StopAndAssertNoLeaks(b);
    }

    [Fact]
    public void A_failing_TUN_write_stops_the_tunnel_and_returns_the_batch()
    {
        var (a, b) = StartPairWithTraffic();
        b.Tun.FailWrites(new TunDeviceException("tun-b: write failed (EIO)"));
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2));
        ExpectTunnelGone(b, "TUN device lost: tun-b: write failed");
        StopAndAssertNoLeaks(a);
    }

    [Fact]
    public void Losing_the_socket_stops_the_tunnel_and_tells_the_host_why()
    {
        var (a, b) = StartPairWithTraffic();
        b.Socket.Fail(new UdpSocketException("udp 51002: socket closed"));
        ExpectTunnelGone(b, "UDP socket failed: udp 51002: socket closed");
        // A send on a failed socket fails A as well.
        a.Socket.Fail(new UdpSocketException("udp 51001: network is down"));
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2));
        ExpectTunnelGone(a, "UDP socket failed: udp 51001");
    }

    [Fact]
    public void A_fault_while_routing_a_read_batch_fails_the_tunnel_without_returning_a_buffer_twice()
    {
        // The first packet is already grouped for B when the second one throws: the reader thread
        // must hand the group's buffers back exactly once and report, not crash the process.
        var (a, b) = StartPairWithTraffic();
        a.Seam.ThrowOnRouteTo(System.Net.IPAddress.Parse("10.66.0.1"));
        // A bug, not a lost device: logged with its exception (the stack trace a report needs).
        EventFilter.Exception<InvalidOperationException>(contains: "a tunnel actor failed").ExpectOne(Wait, () =>
            a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2), Packets.Ipv4(a.Address, b.Address, id: 3), Packets.Ipv4(a.Address, "10.66.0.1", id: 4)));
        ExpectTunnelGone(a, "internal failure: InvalidOperationException: test: routing fault");
        StopAndAssertNoLeaks(b);
    }

    [Fact]
    public void A_fault_while_routing_a_received_batch_fails_the_tunnel_without_returning_a_buffer_twice()
    {
        var (a, b) = StartPairWithTraffic();
        b.Seam.ThrowOnIndexLookupsAfter(1);
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2), Packets.Ipv4(a.Address, b.Address, id: 3), Packets.Ipv4(a.Address, b.Address, id: 4));
        ExpectTunnelGone(b, "internal failure: InvalidOperationException: test: index lookup fault");
        StopAndAssertNoLeaks(a);
    }
}
