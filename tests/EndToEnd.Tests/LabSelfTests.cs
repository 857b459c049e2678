using Firezone.Actors.EndToEnd.Tests.Harness;
using Xunit.Abstractions;
using static Firezone.Actors.EndToEnd.Tests.Harness.CounterSnapshot;

namespace Firezone.Actors.EndToEnd.Tests;

/// <summary>
/// Proves the lab itself with Debian's wireguard-go on both sides: if this fails, the other
/// end-to-end failures say nothing about firezone-tunnel.
/// </summary>
public sealed class LabSelfTests(ITestOutputHelper output)
{
    [Fact]
    public void WireGuardGoToWireGuardGo_PingTransferCountersAndRouterMarking()
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(60));
        lab.Gateway.Start(Implementations.WireGuardGo);
        lab.Client.Start(Implementations.WireGuardGo);

        var start = lab.Counters();
        Assert.True(lab.FirstPing(Roles.Client, Addresses.ResourceV4, 3), "client -> resource, IPv4 inner");
        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV6, 3), "client -> resource, IPv6 inner");
        Assert.True(lab.Ping(Roles.Gateway, Addresses.ClientTunnelV4, 3), "gateway -> client");
        var pinged = lab.Counters();
        Assert.Equal(1, pinged.Since(start, HandshakeInitiations("c2g")));
        Assert.Equal(0, pinged.Since(start, HandshakeInitiations("g2c")));
        // Six echo requests and their replies cross the gateway's TUN (three each way, plus IPv6).
        Assert.True(pinged.Since(start, Inner(Roles.Gateway, "icmp", "notect")) >= 6, pinged.ToString());
        // wireguard-go never copies ECN to the outer header (measured; see shared ECN notes).
        Assert.True(pinged.Since(start, Outer("sent", "c2g", "notect")) >= 6);
        Assert.Equal(0, pinged.Since(start, Outer("sent", "c2g", "ect0")));

        lab.SendAndVerify(Roles.Client, Roles.Resource, Addresses.ResourceV4, 5_000_000, TimeSpan.FromSeconds(30));
        var transferred = lab.Counters();
        // Inner TCP data segments are ECT(0) (tcp_ecn=1 in client and resource), the outer ones are not.
        Assert.True(transferred.Since(pinged, Inner(Roles.Gateway, "tcp", "ect0")) > 1000, transferred.ToString());

        // Marking touches only ECT datagrams: wireguard-go's Not-ECT datagrams pass unmarked.
        lab.Mark(100);
        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV4, 3));
        var marked = lab.Counters();
        Assert.Equal(0, marked.Since(transferred, Outer("fwd", "c2g", "ce")));

        // Forcing rewrites every tunnel datagram, Not-ECT included; wireguard-go ignores the outer field.
        lab.Force("ce");
        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV4, 3));
        var forced = lab.Counters();
        Assert.True(forced.Since(marked, Outer("fwd", "c2g", "ce")) >= 3, forced.ToString());
        Assert.Equal(0, forced.Since(marked, Outer("sent", "c2g", "ce")));
        lab.Force("ect1");
        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV4, 3));
        Assert.True(lab.Counters().Since(forced, Outer("fwd", "g2c", "ect1")) >= 3);
        lab.Force("off");

        var pid = lab.Client.Pid;
        lab.Client.Stop();
        Assert.False(lab.Client.IsRunning);
        Assert.False(ProcessState.IsRunning(pid), $"wireguard-go PID {pid} still runs after stop");
    }
}
