using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// A peer with no endpoint yet (a Gateway's Client that has not connected) holds the packets routed
/// to it, as wireguard-go and the kernel do: they go out once the Client's handshake is confirmed,
/// or are dropped when the handshake attempts give up after Rekey-Attempt-Time. In the harness B
/// does not know A's endpoint, as a Gateway does not know its Client's.
/// </summary>
public class EndpointlessPeerTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void Packets_for_a_peer_with_no_endpoint_are_held_and_sent_once_its_handshake_is_confirmed()
    {
        var wire = new WireHarness(seed: 81);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(SealResult.Queued, wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: i)));
        }
        Assert.Empty(wire.Wire); // nowhere to send anything yet
        Assert.Equal(3, wire.B.Peer.StagedCount);
        Assert.Equal(3, wire.B.Device.StagedBudget.Held);

        wire.Advance(S(2));
        wire.Handshake(); // A connects; its keepalive confirms B's keypair

        Assert.Equal(3, wire.A.Received.Count);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(wire.PacketFrom(wire.B, tag: i), wire.A.Received[i].Packet);
        }
        Assert.Equal(0, wire.B.Peer.StagedCount);
        Assert.Equal(0, wire.B.Device.StagedBudget.Held);
        Assert.Equal(0, wire.B.Peer.Counters.OutboundDropped);
        Assert.Empty(wire.Sent(wire.B, MessageType.Initiation)); // it answered A's handshake, no crossing one of its own
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Packets_held_for_a_peer_that_never_connects_are_dropped_when_the_attempts_give_up()
    {
        var wire = new WireHarness(seed: 82);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(SealResult.Queued, wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: i)));
        }
        Assert.NotNull(wire.B.Peer.PollTimeout());

        wire.Advance(ProtocolConstants.RekeyAttemptTime - S(1));
        Assert.Equal(4, wire.B.Peer.StagedCount); // still waiting

        wire.Advance(S(15)); // 19 attempts 5 s apart, each with up to a third of a second of jitter
        Assert.Equal(0, wire.B.Peer.StagedCount);
        Assert.Equal(4, wire.B.Peer.Counters.StagedDropped);
        Assert.Equal(0, wire.B.Device.StagedBudget.Held);
        Assert.Equal(0, wire.B.Pool.Outstanding);
        Assert.Equal(1, wire.B.Peer.Counters.HandshakeGiveUps);
        Assert.Empty(wire.Wire);
        Assert.Equal(0, wire.B.Device.Indices.Count); // no initiation was made for nowhere
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void An_endpoint_configured_while_packets_are_held_gets_a_handshake_at_the_next_retransmission_and_the_packets()
    {
        var wire = new WireHarness(seed: 83);
        Assert.Equal(SealResult.Queued, wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: 7)));
        wire.Advance(S(1));

        var config = wire.B.Peer.Config with { Endpoint = wire.A.Endpoint };
        wire.B.Peer.Update(config, wire.Now);
        wire.Advance(ProtocolConstants.RekeyTimeout + S(1)); // retransmission (with jitter) is due by now

        Assert.Single(wire.Sent(wire.B, MessageType.Initiation));
        Assert.Equal(wire.PacketFrom(wire.B, tag: 7), Assert.Single(wire.A.Received).Packet);
        wire.DisposeAndAssertNoLeaks();
    }
}
