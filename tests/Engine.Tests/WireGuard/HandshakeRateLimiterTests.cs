using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>The per-source limit on handshake messages under load (the kernel's ratelimiter.c, wireguard-go's ratelimiter).</summary>
public class HandshakeRateLimiterTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    private static UdpEndpoint V4(byte last, ushort port = 51820) => UdpEndpoint.FromIPv4([198, 51, 100, last], port);

    private static UdpEndpoint V6(string address, ushort port = 51820) =>
        UdpEndpoint.FromIPEndPoint(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(address), port));

    private static int AllowedAt(HandshakeRateLimiter limiter, UdpEndpoint source, TimeSpan now, int attempts)
    {
        int allowed = 0;
        for (int i = 0; i < attempts; i++)
        {
            allowed += limiter.Allow(source, now) ? 1 : 0;
        }
        return allowed;
    }

    [Fact]
    public void A_source_gets_a_burst_of_five_then_twenty_a_second()
    {
        var limiter = new HandshakeRateLimiter();
        Assert.Equal(5, AllowedAt(limiter, V4(1), S(10), 50));
        // A twentieth of a second earns one more message, not two.
        Assert.Equal(0, AllowedAt(limiter, V4(1), S(10.049), 5));
        Assert.Equal(1, AllowedAt(limiter, V4(1), S(10.05), 5));
        // Kept busy for ten seconds at 100 a second: twenty a second get through.
        int allowed = 0;
        for (int ms = 60; ms < 10_060; ms += 10)
        {
            allowed += limiter.Allow(V4(1), S(10 + ms / 1000.0)) ? 1 : 0;
        }
        Assert.InRange(allowed, 199, 201);
    }

    [Fact]
    public void A_quiet_spell_refills_at_most_one_burst()
    {
        var limiter = new HandshakeRateLimiter();
        Assert.Equal(5, AllowedAt(limiter, V4(1), S(1), 10));
        Assert.Equal(5, AllowedAt(limiter, V4(1), S(1.9), 10)); // 0.9 s earns 18, capped at 5
    }

    [Fact]
    public void Sources_are_addresses_not_ports_and_ipv6_sources_are_their_slash_64()
    {
        var limiter = new HandshakeRateLimiter();
        Assert.Equal(5, AllowedAt(limiter, V4(1, 1000), S(1), 5));
        Assert.Equal(0, AllowedAt(limiter, V4(1, 2000), S(1), 5)); // same address, another port
        Assert.Equal(5, AllowedAt(limiter, V4(2), S(1), 10)); // another address has its own bucket

        Assert.Equal(5, AllowedAt(limiter, V6("2001:db8:1:2::1"), S(1), 5));
        Assert.Equal(0, AllowedAt(limiter, V6("2001:db8:1:2:ffff::9"), S(1), 5)); // same /64
        Assert.Equal(5, AllowedAt(limiter, V6("2001:db8:1:3::1"), S(1), 10)); // next /64
        // An IPv4 address is not the /64 its mapped form falls in.
        Assert.Equal(5, AllowedAt(limiter, V4(3), S(1), 10));
    }

    [Fact]
    public void A_source_quiet_for_over_a_second_is_forgotten()
    {
        var limiter = new HandshakeRateLimiter();
        for (byte i = 1; i <= 100; i++)
        {
            limiter.Allow(V4(i), S(1));
        }
        Assert.Equal(100, limiter.SourceCount);
        limiter.Allow(V4(1), S(1.5)); // within the second: nothing is swept
        Assert.Equal(100, limiter.SourceCount);
        limiter.Allow(V4(1), S(2.6)); // 1.6 s after the others, 1.1 s after this one
        Assert.Equal(1, limiter.SourceCount);
    }

    [Fact]
    public void After_a_flood_the_devices_sources_are_forgotten_at_its_next_handshake_message_also_when_not_under_load()
    {
        // The table was swept only by a message under load with a valid mac2: after a flood it kept
        // up to MaxSources buckets (a few MB) until the next flood (found by the churn review).
        // wireguard-go sweeps every second on a timer; the engine has none, so every handshake
        // message the device sees sweeps when a second has passed.
        var pool = new PacketBufferPool(preallocate: 0);
        using var device = new Device(WireHarness.RandomKey(new SeededRandomSource(5)), pool, new SeededRandomSource(6), DateTime.UnixEpoch);
        for (int i = 0; i < 1000; i++)
        {
            Assert.True(device.RateLimiter.Allow(UdpEndpoint.FromIPv4([10, 0, (byte)(i >> 8), (byte)i], 1), S(1)));
        }
        Assert.Equal(1000, device.RateLimiter.SourceCount);

        var bytes = new byte[MessageHeader.InitiationSize];
        bytes[0] = (byte)MessageType.Initiation; // any initiation: this one fails mac1
        var datagram = TestPackets.Rent(pool, bytes);
        datagram.Endpoint = V4(1);
        Assert.Equal(HandshakeAdmission.Reject, device.AdmitHandshake(datagram, underLoad: false, S(1.5), out _));
        Assert.Equal(1000, device.RateLimiter.SourceCount); // within the second
        Assert.Equal(HandshakeAdmission.Reject, device.AdmitHandshake(datagram, underLoad: false, S(2.5), out _));
        Assert.Equal(0, device.RateLimiter.SourceCount);
        datagram.Return();
    }

    [Fact]
    public void Once_the_table_is_full_a_new_source_is_refused_and_known_ones_still_served()
    {
        var limiter = new HandshakeRateLimiter();
        for (int i = 0; i < HandshakeRateLimiter.MaxSources; i++)
        {
            Assert.True(limiter.Allow(UdpEndpoint.FromIPv4([10, (byte)(i >> 16), (byte)(i >> 8), (byte)i], 1), S(5)));
        }
        Assert.False(limiter.Allow(V4(1), S(5.5)));
        Assert.True(limiter.Allow(UdpEndpoint.FromIPv4([10, 0, 0, 7], 1), S(5.5)));
        // After a second without them, the table has room again.
        Assert.True(limiter.Allow(V4(1), S(6.6)));
        Assert.Equal(1, limiter.SourceCount);
    }

    [Fact]
    public void Time_that_runs_backwards_earns_nothing()
    {
        var limiter = new HandshakeRateLimiter();
        Assert.Equal(5, AllowedAt(limiter, V4(1), S(5), 5));
        Assert.Equal(0, AllowedAt(limiter, V4(1), S(4), 5));
        Assert.Equal(0, AllowedAt(limiter, V4(1), S(5.049), 5));
    }
}
