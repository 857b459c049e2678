using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// Reads the socket dropped because the kernel cut their control data (MSG_CTRUNC: the ECN codepoint
/// or a GRO read's segment size missing, see LinuxUdpSocket.ControlTruncated.cs) are not only
/// counted: the log says so at Warning, at most once per 10 s and only when the count moved, since
/// every such read is lost and the cause (a kernel writing a control message the socket makes no
/// room for) is not one an operator would guess from a slow tunnel.
/// </summary>
public sealed class ControlDataTruncatedTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public void Reads_dropped_for_cut_control_data_are_logged_at_warning_once_per_interval()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        b.Socket.ReceiveControlTruncated = 4;
        EventFilter.Warning(contains: $"UDP port {b.Socket.LocalPort}: 4 reads dropped so far because the kernel cut their control data (MSG_CTRUNC)").ExpectOne(Wait, () =>
        {
            a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
            AwaitWritten(b, 1);
        });
        // More cut reads within the interval: no second line.
        b.Socket.ReceiveControlTruncated = 5;
        EventFilter.Warning(contains: "because the kernel cut their control data").Expect(0, TimeSpan.FromSeconds(1), () =>
        {
            a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2));
            AwaitWritten(b, 2);
        });
        // After it, the next read reports the count it has reached.
        Clock.Advance(TimeSpan.FromSeconds(10));
        EventFilter.Warning(contains: "5 reads dropped so far").ExpectOne(Wait, () =>
        {
            a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 3));
            AwaitWritten(b, 3);
        });
        var counters = Control<Firezone.Actors.Actors.Tunnel.TunnelTopology>(b, Firezone.Actors.Actors.Tunnel.GetTunnelTopology.Instance).Counters;
        Assert.Equal(5, counters.DatagramsControlTruncatedCount);
        StopAndAssertNoLeaks(a, b);
    }
}
