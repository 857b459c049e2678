using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// A device with a wall-clock source reads it for each initiation's TAI64N timestamp (whitepaper
/// section 5.4.2, as wireguard-go stamps tai64n.Now()) and for LastHandshakeUtc, so a clock that NTP
/// corrects after start is followed at once. The tests move the source by hand.
/// </summary>
public class WallClockTests
{
    private static readonly DateTime Correct = new(2027, 3, 1, 8, 0, 0, DateTimeKind.Utc);
    private static readonly UdpEndpoint EndpointB = UdpEndpoint.FromIPv4([198, 51, 100, 2], 51820);

    [Fact]
    public void Each_initiation_is_stamped_with_the_sources_time_when_it_is_sent()
    {
        var privateA = ReferenceWireGuard.KeyBytes(701);
        var privateB = ReferenceWireGuard.Clamp(ReferenceWireGuard.KeyBytes(702));
        var publicA = ReferenceWireGuard.PublicKey(ReferenceWireGuard.Clamp(privateA));
        var publicB = ReferenceWireGuard.PublicKey(privateB);
        var pool = new PacketBufferPool(preallocate: 4);
        DateTime clock = Correct;
        var wallClockAtZero = new DateTime(2026, 11, 25, 12, 0, 0, DateTimeKind.Utc);
        var device = new Device(new WireGuardKey(privateA), pool, new SeededRandomSource(7), wallClockAtZero, () => clock);

        byte[] TimestampOfInitiationAt(TimeSpan now)
        {
            var peer = new Peer(device, new PeerConfig { PublicKey = new WireGuardKey(publicB), Endpoint = EndpointB });
            peer.Connect(now);
            Assert.True(peer.PollTransmit(out var datagram));
            var initiation = datagram.Data.ToArray();
            datagram.Return();
            peer.Dispose();
            Assert.NotNull(ReferenceWireGuard.ConsumeInitiation(initiation, privateB, publicA, out var timestamp));
            return timestamp;
        }

        Assert.Equal(ReferenceWireGuard.Tai64N(Correct), TimestampOfInitiationAt(TimeSpan.FromSeconds(1)));

        clock = Correct - TimeSpan.FromHours(1); // set back
        var now = TimeSpan.FromSeconds(2);
        byte[] setBack = TimestampOfInitiationAt(now);
        Assert.Equal(ReferenceWireGuard.Tai64N(clock), setBack);
        Assert.NotEqual(ReferenceWireGuard.Tai64N(wallClockAtZero + now), setBack);

        clock = Correct + TimeSpan.FromSeconds(3); // corrected
        Assert.Equal(ReferenceWireGuard.Tai64N(clock), TimestampOfInitiationAt(TimeSpan.FromSeconds(3)));

        // A Local time from the source is converted to UTC, as the wall clock at zero is.
        clock = DateTime.SpecifyKind(Correct + TimeSpan.FromSeconds(4), DateTimeKind.Utc).ToLocalTime();
        Assert.Equal(ReferenceWireGuard.Tai64N(Correct + TimeSpan.FromSeconds(4)), TimestampOfInitiationAt(TimeSpan.FromSeconds(4)));
        Assert.Equal(0, pool.Outstanding);
        Assert.Equal(0, device.Indices.Count);
    }

    [Fact]
    public void A_peer_accepts_a_restarted_initiators_handshake_as_soon_as_its_clock_is_corrected()
    {
        var wire = new WireHarness(seed: 5);
        wire.Handshake(); // B records A's timestamp: WallClockAtZero
        Assert.Equal(1, wire.B.Peer.Counters.HandshakesCompleted);

        // A's daemon restarts 10 minutes later on a host whose clock is still an hour behind (no RTC, NTP not yet synced).
        DateTime realNow = wire.WallClockAtZero + TimeSpan.FromMinutes(10);
        DateTime clock = realNow - TimeSpan.FromHours(1);
        var restartedPool = new PacketBufferPool(preallocate: 8);
        var restarted = new Device(wire.PrivateA, restartedPool, new SeededRandomSource(99), clock, () => clock);
        var config = new PeerConfig
        {
            PublicKey = wire.B.Device.PublicKey,
            Endpoint = wire.B.Endpoint,
            AllowedIps = [IpPrefix.Parse("10.10.0.2/32")],
        };

        Delivery InitiationAt(TimeSpan sinceRestart)
        {
            wire.Now = TimeSpan.FromMinutes(10) + sinceRestart; // B's monotonic time
            var a = new Peer(restarted, config);
            a.Connect(sinceRestart);
            Assert.True(a.PollTransmit(out var initiation));
            var delivery = wire.Inject(wire.B, initiation.Data, wire.A.Endpoint);
            initiation.Return();
            a.Dispose();
            return delivery;
        }

        clock = realNow - TimeSpan.FromHours(1) + TimeSpan.FromSeconds(1);
        Assert.Equal(HandshakeResult.ReplayedTimestamp, InitiationAt(TimeSpan.FromSeconds(1)).Handshake); // older than B's record: a replay

        clock = realNow + TimeSpan.FromSeconds(6); // NTP steps the clock; wireguard-go's next initiation is accepted, and so is ours
        Assert.Equal(HandshakeResult.Accepted, InitiationAt(TimeSpan.FromSeconds(6)).Handshake);
        Assert.Equal(1, wire.B.Peer.Counters.ReplayedTimestamps);

        // Only the source counts, not the monotonic time since the restart: a second later by that, 30 minutes later by the clock.
        clock = realNow + TimeSpan.FromMinutes(30);
        Assert.Equal(HandshakeResult.Accepted, InitiationAt(TimeSpan.FromSeconds(7)).Handshake);
        wire.Dispose();
        Assert.Equal(0, restartedPool.Outstanding);
        Assert.Equal(0, restarted.Indices.Count);
    }

    [Fact]
    public void LastHandshakeUtc_is_the_sources_time_when_the_handshake_completes()
    {
        DateTime clock = Correct;
        var wire = new WireHarness(seed: 6, wallClockA: () => clock, wallClockB: () => clock);
        wire.Handshake();
        Assert.Equal(Correct, wire.A.Peer.LastHandshakeUtc);
        Assert.Equal(Correct, wire.B.Peer.LastHandshakeUtc);

        // Ten seconds later the clock is set back an hour; B starts the next handshake.
        wire.Advance(TimeSpan.FromSeconds(10));
        clock = Correct - TimeSpan.FromHours(1) + TimeSpan.FromSeconds(10);
        wire.B.Peer.Connect(wire.Now);
        wire.Pump();
        Assert.Equal(2, wire.A.Peer.Counters.HandshakesCompleted);
        Assert.Equal(clock, wire.A.Peer.LastHandshakeUtc);
        Assert.Equal(clock, wire.B.Peer.LastHandshakeUtc);
        Assert.NotEqual(wire.WallClockAtZero + wire.Now, wire.A.Peer.LastHandshakeUtc);
        wire.Dispose();
    }
}
