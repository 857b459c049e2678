using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tunnel;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// Socket reads that go wrong in a way an operator would not guess from a slow tunnel are not only
/// counted: the log says so at Warning, at most once per 10 s and only when the count moved.
/// - Reads dropped because the kernel cut their control data (MSG_CTRUNC: the ECN codepoint or a
///   GRO read's segment size missing, see LinuxUdpSocket.ControlTruncated.cs): every such read is
///   lost, and the cause is a kernel writing a control message the socket makes no room for.
/// - Reads the kernel refused with an errno that leaves the socket usable (ENOMEM..., see
///   LinuxUdpSocket.ReceiveErrors.cs): they no longer stop the tunnel, but a tunnel whose reads keep
///   failing passes little, and the line gives the last errno.
/// </summary>
public sealed class SocketReadWarningTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private const int ENOMEM = 12;

    public sealed record Case(string Name, Action<FakeUdpSocket, long> SetCount, Func<int, string> FirstLine, string AnyLine,
        Func<long, string> LaterLine, Func<TunnelCounters, long> Counter)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<Case> Cases => new()
    {
        new Case("cut control data",
            (socket, n) => socket.ReceiveControlTruncated = n,
            port => $"UDP port {port}: 4 reads dropped so far because the kernel cut their control data (MSG_CTRUNC)",
            "because the kernel cut their control data",
            n => $"{n} reads dropped so far",
            counters => counters.DatagramsControlTruncatedCount),
        new Case("refused receives",
            (socket, n) =>
            {
                socket.LastReceiveErrno = ENOMEM;
                socket.ReceiveErrors = n;
            },
            port => $"UDP port {port}: 4 receives refused by the kernel so far, the last with Cannot allocate memory (errno 12)",
            "receives refused by the kernel",
            n => $"{n} receives refused by the kernel so far",
            counters => counters.DatagramsReceiveErrorsCount),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Are_logged_at_warning_once_per_interval_and_the_tunnel_goes_on(Case c)
    {
        var (a, b) = StartPair();
        c.SetCount(b.Socket, 4);
        EventFilter.Warning(contains: c.FirstLine(b.Socket.LocalPort)).ExpectOne(Wait, () =>
        {
            a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
            AwaitWritten(b, 1);
        });
        // More within the interval: no second line.
        c.SetCount(b.Socket, 5);
        EventFilter.Warning(contains: c.AnyLine).Expect(0, TimeSpan.FromSeconds(1), () =>
        {
            a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2));
            AwaitWritten(b, 2);
        });
        // After it, the next read reports the count it has reached.
        Clock.Advance(TimeSpan.FromSeconds(10));
        EventFilter.Warning(contains: c.LaterLine(5)).ExpectOne(Wait, () =>
        {
            a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 3));
            AwaitWritten(b, 3);
        });
        var counters = Control<TunnelTopology>(b, GetTunnelTopology.Instance).Counters;
        Assert.Equal(5, c.Counter(counters));
        StopAndAssertNoLeaks(a, b);
    }
}
