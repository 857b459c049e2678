using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// Socket reads the kernel refused with an errno that leaves the socket usable (ENOMEM..., see
/// LinuxUdpSocket.ReceiveErrors.cs) no longer stop the tunnel; they are counted, and the log says so at
/// Warning with the last errno, at most once per 10 s and only when the count moved: a tunnel whose
/// reads keep failing passes little, and nothing else would tell why.
/// </summary>
public sealed class ReceivesRefusedTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private const int ENOMEM = 12;

    [Fact]
    public void Refused_reads_are_logged_at_warning_with_the_errno_once_per_interval_and_the_tunnel_goes_on()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        b.Socket.LastReceiveErrno = ENOMEM;
        b.Socket.ReceiveErrors = 4;
        EventFilter.Warning(contains: $"UDP port {b.Socket.LocalPort}: 4 receives refused by the kernel so far, the last with Cannot allocate memory (errno 12)").ExpectOne(Wait, () =>
        {
            a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
            AwaitWritten(b, 1);
        });
        // More within the interval: no second line.
        b.Socket.ReceiveErrors = 5;
        EventFilter.Warning(contains: "receives refused by the kernel").Expect(0, TimeSpan.FromSeconds(1), () =>
        {
            a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2));
            AwaitWritten(b, 2);
        });
        // After it, the next read reports the count it has reached.
        Clock.Advance(TimeSpan.FromSeconds(10));
        EventFilter.Warning(contains: "5 receives refused by the kernel so far").ExpectOne(Wait, () =>
        {
            a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 3));
            AwaitWritten(b, 3);
        });
        var counters = Control<Firezone.Actors.Actors.Tunnel.TunnelTopology>(b, Firezone.Actors.Actors.Tunnel.GetTunnelTopology.Instance).Counters;
        Assert.Equal(5, counters.DatagramsReceiveErrorsCount);
        StopAndAssertNoLeaks(a, b);
    }
}
