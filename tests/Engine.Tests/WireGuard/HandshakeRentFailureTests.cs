using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// An initiation that could not be built because the pool was empty was never sent, so it must not
/// start the one-per-Rekey-Timeout limit (section 6.4), and a retry must still be scheduled.
/// </summary>
public class HandshakeRentFailureTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    private static (PacketBufferPool Pool, Peer Peer, PacketBuffer Held) ExhaustedPeer()
    {
        var pool = new PacketBufferPool(preallocate: 1, maxBuffers: 1);
        var device = new Device(WireHarness.RandomKey(new SeededRandomSource(601)), pool, new SeededRandomSource(602),
            new DateTime(2026, 11, 25, 12, 0, 0, DateTimeKind.Utc));
        var remote = new Device(WireHarness.RandomKey(new SeededRandomSource(603)), new PacketBufferPool(preallocate: 1),
            new SeededRandomSource(604), DateTime.UnixEpoch).PublicKey;
        var peer = new Peer(device, new PeerConfig { PublicKey = remote, Endpoint = UdpEndpoint.FromIPv4([192, 0, 2, 9], 51820) });
        var held = pool.Rent();
        return (pool, peer, held);
    }

    [Fact]
    public void A_failed_rent_does_not_block_the_next_attempt()
    {
        var (pool, peer, held) = ExhaustedPeer();
        peer.Connect(S(10));
        Assert.Equal(1, peer.Counters.PoolExhausted);
        Assert.False(peer.PollTransmit(out _));

        held.Return();
        // One second later, well inside Rekey-Timeout of the failed attempt: nothing was sent, so go.
        peer.Connect(S(11));
        Assert.True(peer.PollTransmit(out var initiation));
        Assert.Equal(MessageType.Initiation, MessageHeader.Classify(initiation.Data, out _));
        initiation.Return();
        Assert.Equal(1, peer.Counters.HandshakeInitiationsSent);
        peer.Dispose();
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void A_failed_rent_arms_the_retransmit_timer()
    {
        var (pool, peer, held) = ExhaustedPeer();
        peer.Connect(S(10));
        Assert.False(peer.PollTransmit(out _));
        var retry = peer.PollTimeout();
        Assert.NotNull(retry);
        Assert.True(retry > S(10));

        held.Return();
        peer.HandleTimeout(retry!.Value);
        Assert.True(peer.PollTransmit(out var initiation));
        Assert.Equal(MessageType.Initiation, MessageHeader.Classify(initiation.Data, out _));
        initiation.Return();
        peer.Dispose();
        Assert.Equal(0, pool.Outstanding);
    }
}
