using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>The cookie mechanism (whitepaper section 5.3) through the actors: SocketIO -> supervisor -> SocketIO -> peer.</summary>
public sealed class HandshakeLoadTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public void Under_load_an_initiation_gets_a_cookie_reply_and_the_retry_with_mac2_is_admitted()
    {
        var (a, b) = StartPairWithBUnderLoad();

        AwaitCondition(() => Network.Count(d => d.From == b.Endpoint && d.Type == MessageType.CookieReply) == 1, Wait);
        AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.CookieRepliesSent == 1, Wait);
        Assert.Equal(0, Network.Count(d => d.Type == MessageType.Response));
        Assert.Equal(0, b.Tun.WrittenCount);

        // A's retransmission (Rekey-Timeout, section 6.4) carries mac2 from the cookie and is admitted.
        AwaitPeerTimerArmed(a, b);
        AdvanceTime(TimeSpan.FromSeconds(5.4));
        AwaitWritten(b, 1);
        Assert.Equal(2, Network.Count(d => d.From == a.Endpoint && d.Type == MessageType.Initiation));
        Assert.Equal(1, Network.Count(d => d.From == b.Endpoint && d.Type == MessageType.Response));
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void Under_load_replays_of_an_initiation_with_a_valid_cookie_are_held_to_the_sources_share()
    {
        var (a, b) = StartPairWithBUnderLoad();
        AwaitCondition(() => Network.Count(d => d.From == b.Endpoint && d.Type == MessageType.CookieReply) == 1, Wait);
        AwaitPeerTimerArmed(a, b);
        AdvanceTime(TimeSpan.FromSeconds(5.4));
        AwaitWritten(b, 1);
        var withCookie = Network.Log.Where(d => d.From == a.Endpoint && d.Type == MessageType.Initiation).ElementAt(1).Data;

        // Ten replays at the same moment: the admitted retry took one of the source's five, four
        // more pass mac2 and the limit (and are then refused by the peer as replays), six are dropped.
        for (int i = 0; i < 10; i++)
        {
            b.Socket.Deliver(withCookie, a.Endpoint, Engine.Ecn.NotEct);
        }
        AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.HandshakesRateLimited == 6, Wait);
        Assert.Equal(6, b.Device.Counters.RateLimited);
        // Still one response: nothing that passed answered a replay.
        Assert.Equal(1, Network.Count(d => d.From == b.Endpoint && d.Type == MessageType.Response));
        StopAndAssertNoLeaks(a, b);
    }

    /// <summary>A and B, each the other's peer (B does not know A's endpoint), every initiation "under load" at B; A has a packet for B.</summary>
    private (TunnelNode A, TunnelNode B) StartPairWithBUnderLoad()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2, new PeerSupervisorOptions { HandshakesPerSecondUnderLoad = 0 });
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        return (a, b);
    }

    [Fact]
    public void Sending_cookie_replies_logs_one_warning_per_ten_seconds_with_the_count()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2, new PeerSupervisorOptions { HandshakesPerSecondUnderLoad = 0 });
        var c = StartNode("c", 3);
        var d = StartNode("d", 4);
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(c, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        Control<PeerConfigured>(c, new AddOrUpdatePeer(c.PeerConfigFor(b)));

        EventFilter.Warning(contains: "under load (more than 0 handshake initiations a second)").ExpectOne(Wait, () =>
        {
            a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
            AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.CookieRepliesSent == 1, Wait);
            // A second cookie reply within the 10 s: counted, not logged.
            c.Tun.Inject(Packets.Ipv4(c.Address, b.Address, id: 1));
            AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.CookieRepliesSent == 2, Wait);
        });
        // Past the 10 s: the next cookie reply logs again, with the running count (A's and C's
        // retransmissions carry mac2 and are admitted; a fresh initiation without one is not).
        EventFilter.Warning(contains: "3 cookie replies sent so far").ExpectOne(Wait, () =>
        {
            AdvanceTime(TimeSpan.FromSeconds(10.5));
            Control<PeerConfigured>(d, new AddOrUpdatePeer(d.PeerConfigFor(b)));
            d.Tun.Inject(Packets.Ipv4(d.Address, b.Address, id: 1));
            AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.CookieRepliesSent >= 3, Wait);
        });
        StopAndAssertNoLeaks(a, b, c, d);
    }
}
