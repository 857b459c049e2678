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
        var a = StartNode("a", 1);
        // Every initiation counts as "under load" at B.
        var b = StartNode("b", 2, new PeerSupervisorOptions { HandshakesPerSecondUnderLoad = 0 });
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));

        AwaitCondition(() => Network.Count(d => d.From == b.Endpoint && d.Type == MessageType.CookieReply) == 1, Wait);
        AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.CookieRepliesSent == 1, Wait);
        Assert.Equal(0, Network.Count(d => d.Type == MessageType.Response));
        Assert.Equal(0, b.Tun.WrittenCount);

        // A's retransmission (Rekey-Timeout, section 6.4) carries mac2 from the cookie and is admitted.
        AdvanceTime(TimeSpan.FromSeconds(5.4));
        AwaitWritten(b, 1);
        Assert.Equal(2, Network.Count(d => d.From == a.Endpoint && d.Type == MessageType.Initiation));
        Assert.Equal(1, Network.Count(d => d.From == b.Endpoint && d.Type == MessageType.Response));
        StopAndAssertNoLeaks(a, b);
    }
}
