using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// Whitepaper section 5.1: an initiation whose TAI64N timestamp is not newer than the greatest one
/// accepted from that peer is a replay. That memory must survive replacing the Peer instance (an actor
/// restart), or a captured initiation is accepted again by the fresh instance.
/// </summary>
public class ReplayStateAcrossRestartTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    private static byte[] RestartAndReplay(WireHarness wire, HandshakeReplayState? state, out Delivery delivery)
    {
        wire.Handshake();
        var initiation = wire.Sent(wire.A, MessageType.Initiation)[0].Bytes;
        var config = wire.B.Peer.Config;
        wire.B.Peer.Dispose();
        wire.B.Peer = new Peer(wire.B.Device, config);
        if (state is not null)
        {
            wire.B.Peer.AttachReplayState(state);
        }
        // Past the flood limit (section 5.1, 1/50 s): only the timestamp can reject it.
        wire.AdvanceTo(wire.Now + S(2));
        delivery = wire.Inject(wire.B, initiation, wire.A.Endpoint);
        return initiation;
    }

    [Fact]
    public void A_restarted_peer_rejects_an_initiation_replayed_from_before_the_restart()
    {
        var wire = new WireHarness(seed: 501);
        var state = new HandshakeReplayState();
        wire.B.Peer.AttachReplayState(state);

        RestartAndReplay(wire, state, out var delivery);

        Assert.Equal(HandshakeResult.ReplayedTimestamp, delivery.Handshake);
        Assert.Equal(1, wire.B.Peer.Counters.ReplayedTimestamps);
        Assert.False(wire.B.Peer.PollTransmit(out _)); // no response to a replay

        // A genuine new initiation (newer timestamp) is still accepted by the restarted peer.
        wire.AdvanceTo(wire.Now + S(10));
        wire.A.Peer.Connect(wire.Now);
        wire.Pump();
        var last = wire.B.Deliveries.FindLast(d => d.Type == MessageType.Initiation);
        Assert.Equal(HandshakeResult.Accepted, last.Handshake);
        wire.Dispose();
    }

    [Fact]
    public void Without_the_shared_state_a_fresh_peer_would_accept_the_replay()
    {
        // The vulnerability the shared state closes: shows the replay test above is meaningful.
        var wire = new WireHarness(seed: 502);
        RestartAndReplay(wire, state: null, out var delivery);
        Assert.Equal(HandshakeResult.Accepted, delivery.Handshake);
        wire.Dispose();
    }

    [Fact]
    public void Restoring_never_lowers_the_greatest_timestamp()
    {
        var wire = new WireHarness(seed: 503);
        var stale = new HandshakeReplayState(); // empty: timestamp zero
        wire.Handshake();
        var initiation = wire.Sent(wire.A, MessageType.Initiation)[0].Bytes;
        wire.B.Peer.AttachReplayState(stale);
        wire.AdvanceTo(wire.Now + S(2));
        Assert.Equal(HandshakeResult.ReplayedTimestamp, wire.Inject(wire.B, initiation, wire.A.Endpoint).Handshake);
        wire.Dispose();
    }
}
