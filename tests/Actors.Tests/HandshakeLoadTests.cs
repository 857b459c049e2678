using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
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

    /// <summary>
    /// The Warnings about handshake load come with the next initiation, so nothing said when a flood
    /// ended, and their counts were not its totals (the flood review: not a line after any flood).
    /// Once the load is over for a whole check interval (10 s), one Information line says so, with
    /// the totals; not before, and not again.
    /// </summary>
    [Fact]
    public void The_end_of_a_handshake_load_is_logged_once_with_the_totals()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2, new PeerSupervisorOptions { HandshakesPerSecondUnderLoad = 0 });
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        EventFilter.Info(contains: "handshake load over").Expect(0, () =>
            EventFilter.Warning(contains: "under load (more than 0 handshake initiations a second)").ExpectOne(Wait, () =>
            {
                a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
                AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.CookieRepliesSent == 1, Wait);
            }));
        // A's retransmission carries mac2 and is admitted (no cookie reply); then nothing comes.
        EventFilter.Info(contains: "handshake load over: no cookie reply sent and no initiation dropped for a full queue in the last 10 s; " +
            "1 cookie replies sent and 0 initiations dropped for a full queue since the tunnel started").ExpectOne(Wait, () =>
        {
            AwaitPeerTimerArmed(a, b);
            AdvanceTime(TimeSpan.FromSeconds(5.4));
            AwaitWritten(b, 1);
            AdvanceTime(TimeSpan.FromSeconds(10.5));
            AdvanceTime(TimeSpan.FromSeconds(10.5));
        });
        EventFilter.Info(contains: "handshake load over").Expect(0, () => AdvanceTime(TimeSpan.FromSeconds(30)));
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

    /// <summary>
    /// A flood of initiations with a valid mac1 under load while SocketIO cannot keep up (its send
    /// waits for room in the socket buffer): the cookie replies waiting for it are bounded as the
    /// initiations waiting for the PeerSupervisor are, and the rest are dropped and counted. They
    /// queued in SocketIO's mailbox without bound, each holding a pooled buffer: the pool grew to
    /// thousands of buffers it keeps for good (found by the churn review's flood in a lab,
    /// 2026-11-27: 3,214 buffers after one 40 s flood, 7,336 after a second one of 20 s).
    /// </summary>
    [Fact]
    public void Under_a_flood_the_cookie_replies_waiting_for_the_socket_are_bounded()
    {
        var b = StartNode("b", 2, new PeerSupervisorOptions { HandshakesPerSecondUnderLoad = 0 });
        using var sendGate = new ManualResetEventSlim(false);
        b.Socket.SendGate = sendGate;
        var initiation = InitiationWithValidMac1(b.PublicKey);
        var flooder = UdpEndpoint.FromIPv4([192, 0, 2, 9], 40000);
        const int Rounds = 6, PerRound = 500; // each round fits the handshake queue (SocketIO.MaxQueuedHandshakes)
        DeviceDropCounts after;
        try
        {
            for (int round = 1; round <= Rounds; round++)
            {
                for (int i = 0; i < PerRound; i++)
                {
                    b.Socket.Deliver(initiation, flooder, Engine.Ecn.NotEct);
                }
                AwaitCondition(() =>
                {
                    var drops = Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops;
                    return drops.CookieRepliesSent + drops.HandshakesRejected == round * PerRound;
                }, Wait);
            }

            after = Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops;
            Assert.InRange(after.CookieRepliesSent, 1, SocketIO.MaxQueuedCookieReplies + InboundHandshakes.Capacity);
            Assert.Equal(Rounds * PerRound - after.CookieRepliesSent, after.HandshakesRejected);
            // What the pool lends out: the waiting cookie replies and the readers' batches, not the flood.
            Assert.InRange(b.Pool.Outstanding, 0, SocketIO.MaxQueuedCookieReplies + InboundHandshakes.Capacity + SocketIO.ReceiveBatchSize + 64);
        }
        finally
        {
            sendGate.Set(); // never leave SocketIO waiting, also when an assertion failed
        }
        AwaitCondition(() => Network.Count(d => d.From == b.Endpoint && d.Type == MessageType.CookieReply) == after.CookieRepliesSent, Wait);
        // Sent, the bound lets cookie replies go out again.
        b.Socket.Deliver(initiation, flooder, Engine.Ecn.NotEct);
        AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.CookieRepliesSent == after.CookieRepliesSent + 1, Wait);
        StopAndAssertNoLeaks(b);
    }

    /// <summary>
    /// Under load stays on for a second after the last initiation that found the device loaded, as
    /// wireguard-go's IsUnderLoad (UnderLoadAfterTime): a flood that goes on into the next
    /// one-second window must not get that window's first initiations past the cookie check. The
    /// window's count alone let the first HandshakesPerSecondUnderLoad of every second through.
    /// </summary>
    [Fact]
    public void Under_load_lasts_a_second_after_the_last_loaded_initiation_also_into_the_next_window()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2, new PeerSupervisorOptions { HandshakesPerSecondUnderLoad = 2 });
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        var flood = InitiationWithValidMac1(b.PublicKey);
        var flooder = UdpEndpoint.FromIPv4([192, 0, 2, 9], 40000);

        b.Socket.Deliver(flood, flooder, Engine.Ecn.NotEct); // opens the window
        AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.HandshakesUnknownPeer == 1, Wait);
        AdvanceTime(TimeSpan.FromSeconds(0.9));
        b.Socket.Deliver(flood, flooder, Engine.Ecn.NotEct);
        b.Socket.Deliver(flood, flooder, Engine.Ecn.NotEct); // the third this second: under load
        AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.CookieRepliesSent == 1, Wait);

        AdvanceTime(TimeSpan.FromSeconds(0.3)); // a new window, 0.3 s after the load was seen
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitCondition(() => Network.Count(d => d.From == a.Endpoint && d.Type == MessageType.Initiation) == 1, Wait);
        AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.CookieRepliesSent == 2, Wait);
        Assert.Equal(1, Network.Count(d => d.From == b.Endpoint && d.To == a.Endpoint && d.Type == MessageType.CookieReply));
        Assert.Equal(0, Network.Count(d => d.Type == MessageType.Response));

        // A's retransmission carries the cookie (mac2) and is answered.
        AwaitPeerTimerArmed(a, b);
        AdvanceTime(TimeSpan.FromSeconds(5.4));
        AwaitWritten(b, 1);
        Assert.Equal(1, Network.Count(d => d.From == b.Endpoint && d.Type == MessageType.Response));
        StopAndAssertNoLeaks(a, b);
    }

    /// <summary>
    /// Initiations with a bad mac1 cost a BLAKE2s and are dropped; anyone can send them without the
    /// interface's public key (a scanner, a garbage flood at an Internet-facing gateway), so they must
    /// not count towards the load. They did: 513 a second put the tunnel under load, and an honest
    /// peer's handshake got a cookie reply and waited a Rekey-Timeout (found in a lab, 2026-11-29: a
    /// flood of 90,000 a second made a wireguard-go client's handshake restart take 5.3 s, against 0.2 s with
    /// wireguard-go as the gateway).
    /// </summary>
    [Fact]
    public void Initiations_with_a_bad_mac1_do_not_put_the_tunnel_under_load()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2, new PeerSupervisorOptions { HandshakesPerSecondUnderLoad = 2 });
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        var badMac1 = new byte[MessageHeader.InitiationSize];
        Random.Shared.NextBytes(badMac1);
        badMac1[0] = (byte)MessageType.Initiation;
        badMac1[1] = badMac1[2] = badMac1[3] = 0;
        var flooder = UdpEndpoint.FromIPv4([192, 0, 2, 9], 40000);

        for (int i = 0; i < 10; i++)
        {
            b.Socket.Deliver(badMac1, flooder, Engine.Ecn.NotEct);
        }
        AwaitCondition(() => Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.HandshakesRejected == 10, Wait);

        // In the same one-second window, A's initiation is answered at once: no cookie reply.
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        Assert.Equal(0, Control<DeviceStatus>(b, GetDeviceStatus.Instance).Drops.CookieRepliesSent);
        Assert.Equal(0, Network.Count(d => d.Type == MessageType.CookieReply));
        Assert.Equal(1, Network.Count(d => d.From == b.Endpoint && d.Type == MessageType.Response));
        StopAndAssertNoLeaks(a, b);
    }

    /// <summary>An initiation with a random body and a valid mac1 for <paramref name="receiver"/> (whitepaper section 5.4.4), mac2 zero.</summary>
    private static byte[] InitiationWithValidMac1(WireGuardKey receiver)
    {
        var message = new byte[MessageHeader.InitiationSize];
        Random.Shared.NextBytes(message);
        message[0] = (byte)MessageType.Initiation;
        message[1] = message[2] = message[3] = 0;
        Span<byte> publicKey = stackalloc byte[WireGuardKey.Size];
        receiver.CopyTo(publicKey);
        Span<byte> mac1Key = stackalloc byte[32];
        Blake2s.Hash("mac1----"u8, publicKey, mac1Key);
        int mac1 = message.Length - 2 * Blake2s.MacSize;
        Blake2s.Mac(mac1Key, message.AsSpan(0, mac1), message.AsSpan(mac1, Blake2s.MacSize));
        message.AsSpan(mac1 + Blake2s.MacSize).Clear();
        return message;
    }
}
