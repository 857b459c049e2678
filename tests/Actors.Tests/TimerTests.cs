using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// The engine's timers (whitepaper section 6) driven through IWithTimers on the TestScheduler:
/// nothing fires until the test moves time.
/// </summary>
public sealed class TimerTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private int InitiationsFrom(TunnelNode node) => Network.Count(d => d.From == node.Endpoint && d.Type == MessageType.Initiation);

    [Fact]
    public void An_unanswered_initiation_is_retransmitted_after_Rekey_Timeout_and_not_before()
    {
        var a = StartNode("a", 1);
        // An endpoint nobody listens on: every initiation is lost.
        var nowhere = UdpEndpoint.FromIPv4([127, 0, 0, 99], 9);
        var ghost = StartNode("ghost", 9);
        Control<PeerConfigured>(a, new AddOrUpdatePeer(new PeerConfig
        {
            PublicKey = ghost.PublicKey,
            Endpoint = nowhere,
            AllowedIps = [IpPrefix.Parse("10.0.0.9/32")],
        }));
        a.Tun.Inject(Packets.Ipv4(a.Address, "10.0.0.9", id: 1)); // traffic starts the handshake
        AwaitCondition(() => InitiationsFrom(a) == 1, Wait);
        AwaitPeerTimerArmed(a, ghost);

        // Rekey-Timeout is 5 s plus up to 333 ms of jitter (section 6.4): at 4.9 s nothing is due.
        AdvanceTime(TimeSpan.FromSeconds(4.9));
        var status = Control<DeviceStatus>(a, GetDeviceStatus.Instance); // a round trip through the supervisor
        Assert.Single(status.Peers);
        Assert.Equal(1, InitiationsFrom(a));

        AdvanceTime(TimeSpan.FromSeconds(0.5));
        AwaitCondition(() => InitiationsFrom(a) == 2, Wait);
        AwaitPeerTimerArmed(a, ghost); // the retry's timer is armed after its datagram is handed on
        AdvanceTime(TimeSpan.FromSeconds(5.4));
        AwaitCondition(() => InitiationsFrom(a) == 3, Wait);
        Assert.All(Network.Log.Where(d => d.From == a.Endpoint), d => Assert.Equal(nowhere, d.To));
        StopAndAssertNoLeaks(a);
    }

    [Fact]
    public void Persistent_keepalive_is_sent_when_its_interval_passes()
    {
        var (a, b) = StartPair(keepalive: 25);
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        // The reader threads stepped both peers and asked their actors to re-arm the engine timers;
        // a status round trip through each PeerConnection's mailbox (queued after those requests)
        // makes sure the timers are armed before time moves.
        PeerStatusOf(a, b);
        PeerStatusOf(b, a);
        int KeepalivesFromA() => Network.Count(d => d.From == a.Endpoint && d.Type == MessageType.TransportData && d.Data.Length == MessageHeader.TransportMinSize);
        int before = KeepalivesFromA();

        // Persistent keepalive fires 25 s after the last authenticated packet either way (B's own
        // passive keepalive at 10 s resets it, section 6.5), so by 40 s one has certainly gone out.
        for (int second = 0; second < 40; second++)
        {
            AdvanceTime(TimeSpan.FromSeconds(1));
            // A timer that fired early re-arms itself for the real deadline when its actor handles it;
            // a round trip through both peers lets that happen before time moves on (without it, a
            // re-arm handled after the last advance would be due only at the next one).
            PeerStatusOf(a, b);
            PeerStatusOf(b, a);
        }
        AwaitCondition(() => KeepalivesFromA() > before, Wait);
        // Keepalives authenticate at B and are not written to its TUN.
        AwaitCondition(() => PeerStatusOf(b, a).RxBytes > 0, Wait);
        Assert.Equal(1, b.Tun.WrittenCount);
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void After_a_suspend_longer_than_Reject_After_Time_the_first_packet_starts_a_handshake_at_once()
    {
        var (a, b) = StartPair();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        PeerStatusOf(a, b);
        Assert.Equal(1, InitiationsFrom(a));
        int sentBefore = Network.Log.Count(d => d.From == a.Endpoint);

        // An hour of suspend: the daemon's clock (BootTimeClock, CLOCK_BOOTTIME) moves on, but no
        // timer fires, because the scheduler sleeps on CLOCK_MONOTONIC, which stood still. Both
        // sessions are now past Reject-After-Time (180 s); the Gateway's would long be gone.
        Clock.Advance(TimeSpan.FromHours(1));
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2));

        // A's first datagram after the resume is an initiation, not data on the old session (on a
        // clock that stood still, as wireguard-go's, it would send on it and wait Keepalive-Timeout
        // plus Rekey-Timeout, 15 s, before it initiated); the packet waits for the new session.
        AwaitCondition(() => InitiationsFrom(a) == 2, Wait);
        Assert.Equal(MessageType.Initiation, Network.Log.Where(d => d.From == a.Endpoint).Skip(sentBefore).First().Type);
        AwaitWritten(b, 2);
        StopAndAssertNoLeaks(a, b);
    }
}
