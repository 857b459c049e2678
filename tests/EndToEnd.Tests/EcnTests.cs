using System.Globalization;
using Firezone.Actors.EndToEnd.Tests.Harness;
using Xunit.Abstractions;
using static Firezone.Actors.EndToEnd.Tests.Harness.CounterSnapshot;

namespace Firezone.Actors.EndToEnd.Tests;

/// <summary>
/// ECN across the tunnel for real (RFC 6040): copy-in seen on the router's outer headers, copy-out
/// seen on the far TUN, and the inner TCP sender's reaction. The client and resource run with
/// net.ipv4.tcp_ecn=1 (set by `lab.sh up`), so inner TCP data segments are ECT(0) (RFC 3168 6.1.1).
/// </summary>
public sealed class EcnTests(ITestOutputHelper output)
{
    private const string Fz = Implementations.FirezoneTunnel;
    private const string Wgo = Implementations.WireGuardGo;

    [Theory]
    [InlineData(4)]
    [InlineData(6)]
    public void OuterEcnFollowsInner_EctStaysEct_NotEctStaysNotEct(int underlay)
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(60), underlay);
        lab.Gateway.Start(Fz);
        lab.Client.Start(Fz);
        Assert.True(lab.FirstPing(Roles.Client, Addresses.ResourceV4, 1));

        var start = lab.Counters();
        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV4, 5));
        var pinged = lab.Counters();
        // Echo requests are Not-ECT inside, so Not-ECT outside (RFC 6040 4.1), in both directions.
        Assert.True(pinged.Since(start, Outer("sent", "c2g", "notect")) >= 5, pinged.ToString());
        Assert.Equal(0, pinged.Since(start, Outer("sent", "c2g", "ect0")) + pinged.Since(start, Outer("sent", "c2g", "ect1")));
        Assert.True(pinged.Since(start, Outer("sent", "g2c", "notect")) >= 5);
        Assert.Equal(0, pinged.Since(start, Outer("sent", "g2c", "ect0")) + pinged.Since(start, Outer("sent", "g2c", "ect1")));

        lab.SendAndVerify(Roles.Client, Roles.Resource, Addresses.ResourceV4, 5_000_000, TimeSpan.FromSeconds(40));
        var sent = lab.Counters();
        var innerEct = sent.Since(pinged, Inner(Roles.Gateway, "tcp", "ect0"));
        var outerEct = sent.Since(pinged, Outer("sent", "c2g", "ect0"));
        lab.Log($"inner ECT(0) TCP on the gateway's TUN {innerEct}, outer ECT(0) on the router {outerEct}");
        // The far TUN's writer coalesces consecutive segments of one flow and codepoint into one
        // super-packet (TUN offload), so the inner counter counts super-packets: it only has to show
        // that ECT(0) arrived. 5 MB needs about 3,500 full-size datagrams, and each went out ECT(0)
        // (RFC 6040 4.1 copy-in); the few Not-ECT ones are handshakes, keepalives and the SYN.
        Assert.True(innerEct > 0, sent.ToString());
        Assert.True(outerEct > 3000, sent.ToString());
        var outerNotEct = sent.Since(pinged, Outer("sent", "c2g", "notect"));
        Assert.True(outerNotEct < outerEct / 20, sent.ToString());
        Assert.True(lab.Client.FirezoneEcn().EctSent >= outerEct, sent.ToString());
    }

    [Fact]
    public void RouterMarksCe_CeReachesFarTunAndTcpSenderSeesIt()
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(90));
        lab.Gateway.Start(Fz);
        lab.Client.Start(Fz);
        Assert.True(lab.FirstPing(Roles.Client, Addresses.ResourceV4, 1));

        // tshark on the gateway's TUN: inner IPv4 packets arriving with CE.
        lab.Background(Roles.Gateway, "tshark", "tshark", "-n", "-l", "-i", lab.Gateway.InterfaceName, "-f", "tcp",
            "-Y", "ip.dsfield.ecn == 3", "-T", "fields", "-e", "frame.number");
        Assert.True(lab.WaitUntil(() => lab.BackgroundError("tshark").Contains("Capturing on", StringComparison.Ordinal),
            TimeSpan.FromSeconds(20)), "tshark did not start: " + lab.BackgroundError("tshark"));

        var before = lab.Counters();
        var deliveredCeBefore = lab.DeliveredCe(Roles.Client);
        lab.Mark(5);
        lab.SendAndVerify(Roles.Client, Roles.Resource, Addresses.ResourceV4, 10_000_000, TimeSpan.FromSeconds(60));
        lab.Mark(0);
        var after = lab.Counters();
        var deliveredCeAfter = lab.DeliveredCe(Roles.Client);
        Thread.Sleep(500);
        lab.StopBackground("tshark");
        var captured = lab.BackgroundOutput("tshark").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;

        var ceSet = after.Since(before, Outer("fwd", "c2g", "ce")) - after.Since(before, Outer("sent", "c2g", "ce"));
        var ceInner = after.Since(before, Inner(Roles.Gateway, "tcp", "ce"));
        var gatewayEcn = lab.Gateway.FirezoneEcn();
        lab.Log($"router set CE on {ceSet}; CE on the gateway's TUN: nft {ceInner}, tshark {captured}; " +
            $"gateway {gatewayEcn}; TcpExtTCPDeliveredCE {deliveredCeBefore} -> {deliveredCeAfter}");
        Assert.True(ceSet > 0, after.ToString());
        Assert.True(ceInner > 0, after.ToString());
        Assert.True(captured > 0, "tshark saw no CE on the far TUN");
        Assert.True(gatewayEcn.CeReceived > 0);
        Assert.True(gatewayEcn.CePropagated > 0);
        Assert.True(deliveredCeAfter > deliveredCeBefore, "the TCP sender never saw CE echoed");
    }

    [Fact]
    public void RouterForcesCe_NotEctDropped_EctArrivesCe()
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(60));
        lab.Gateway.Start(Fz);
        lab.Client.Start(Fz);
        Assert.True(lab.FirstPing(Roles.Client, Addresses.ResourceV4, 1));

        var before = lab.Counters();
        lab.Force("ce");
        Assert.False(lab.Ping(Roles.Client, Addresses.ResourceV4, 3, 1), "Not-ECT inside CE outside must be dropped");
        SendUdp(lab, count: 10, tos: 0x00);
        SendUdp(lab, count: 10, tos: 0x02);
        SendUdp(lab, count: 10, tos: 0x01);
        var after = AwaitArrivals(lab, before, Inner(Roles.Gateway, "udp", "ce"), 20);
        lab.Force("off");

        // RFC 6040 4.2: Not-ECT + CE -> drop; ECT(0) + CE -> CE; ECT(1) + CE -> CE.
        Assert.Equal(0, after.Since(before, Inner(Roles.Gateway, "icmp", "notect")) + after.Since(before, Inner(Roles.Gateway, "icmp", "ce")));
        Assert.Equal(0, after.Since(before, Inner(Roles.Gateway, "udp", "notect")));
        Assert.Equal(20, after.Since(before, Inner(Roles.Gateway, "udp", "ce")));
        Assert.Equal(0, after.Since(before, Inner(Roles.Gateway, "udp", "ect0")) + after.Since(before, Inner(Roles.Gateway, "udp", "ect1")));
        Assert.True(lab.Gateway.FirezoneEcn().EcnDrops >= 13);

        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV4, 3), "the tunnel works again once the router stops");
    }

    [Fact]
    public void RouterForcesEct1_InnerEct0BecomesEct1_NotEctStaysNotEct()
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(60));
        lab.Gateway.Start(Fz);
        lab.Client.Start(Fz);
        Assert.True(lab.FirstPing(Roles.Client, Addresses.ResourceV4, 1));

        var before = lab.Counters();
        lab.Force("ect1");
        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV4, 3));
        SendUdp(lab, count: 10, tos: 0x02);
        SendUdp(lab, count: 10, tos: 0x00);
        var after = AwaitArrivals(lab, before, Inner(Roles.Gateway, "udp", "notect"), 10);
        lab.Force("off");

        // RFC 6040 4.2: ECT(0) + ECT(1) -> ECT(1); Not-ECT + ECT(1) -> Not-ECT (a (!!!) combination).
        Assert.Equal(10, after.Since(before, Inner(Roles.Gateway, "udp", "ect1")));
        Assert.Equal(0, after.Since(before, Inner(Roles.Gateway, "udp", "ect0")));
        Assert.Equal(10, after.Since(before, Inner(Roles.Gateway, "udp", "notect")));
        Assert.True(after.Since(before, Inner(Roles.Gateway, "icmp", "notect")) >= 3);
        Assert.True(lab.Gateway.FirezoneEcn().Alarms > 0, "Not-ECT inside ECT(1) outside should be counted");
    }

    public static TheoryData<string, string> Mixed => new() { { Fz, Wgo }, { Wgo, Fz } };

    /// <summary>firezone-tunnel marks its own outer datagrams even when the peer is wireguard-go (which never does).</summary>
    [Theory]
    [MemberData(nameof(Mixed))]
    public void AgainstWireGuardGo_FirezoneTunnelStillMarksItsOuterDatagrams(string client, string gateway)
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(60));
        lab.Gateway.Start(gateway);
        lab.Client.Start(client);
        Assert.True(lab.FirstPing(Roles.Client, Addresses.ResourceV4, 1));

        var before = lab.Counters();
        lab.SendAndVerify(Roles.Client, Roles.Resource, Addresses.ResourceV4, 5_000_000, TimeSpan.FromSeconds(40));
        lab.StartTransfer(Roles.Resource, Addresses.ResourceV4, "send", Roles.Client, 5_000_000)
            .Wait(TimeSpan.FromSeconds(40)).AssertIntact(5_000_000);
        var after = lab.Counters();

        var (fz, wgo) = client == Fz ? ("c2g", "g2c") : ("g2c", "c2g");
        var fzEct = after.Since(before, Outer("sent", fz, "ect0"));
        var wgoEct = after.Since(before, Outer("sent", wgo, "ect0")) + after.Since(before, Outer("sent", wgo, "ect1"));
        lab.Log($"outer ECT(0) from firezone-tunnel {fzEct}, outer ECT from wireguard-go {wgoEct}");
        Assert.True(fzEct > 1000, after.ToString());
        Assert.Equal(0, wgoEct);
        Assert.True(after.Since(before, Outer("sent", wgo, "notect")) > 1000);
    }

    /// <summary>
    /// The counters once <paramref name="counter"/> has grown by <paramref name="expected"/> since
    /// <paramref name="before"/>: the datagrams the client sent cross two daemons and the router
    /// before the gateway's TUN counts them, which a fixed pause does not wait for on a loaded
    /// machine. The exact counts are then asserted; the datagrams sent before the last batch took
    /// the same path ahead of it.
    /// </summary>
    private static CounterSnapshot AwaitArrivals(Lab lab, CounterSnapshot before, string counter, long expected)
    {
        var after = before;
        Assert.True(lab.WaitUntil(() => (after = lab.Counters()).Since(before, counter) >= expected, TimeSpan.FromSeconds(15)),
            $"{counter}: {after.Since(before, counter)} of {expected} arrived within 15 s: {after}");
        return after;
    }

    private static void SendUdp(Lab lab, int count, int tos) =>
        lab.Exec(Roles.Client, Paths.Python, Paths.TransferScript, "udp", Addresses.ResourceV4, "9",
            count.ToString(CultureInfo.InvariantCulture), tos.ToString(CultureInfo.InvariantCulture));
}
