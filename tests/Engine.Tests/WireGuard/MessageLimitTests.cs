using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>Rekey-After-Messages and Reject-After-Messages (whitepaper section 6.2), by moving the send counter instead of sending 2^60 packets.</summary>
public class MessageLimitTests
{
    [Fact]
    public void Sending_past_rekey_after_messages_starts_a_handshake_even_as_responder()
    {
        var wire = new WireHarness(seed: 71);
        wire.Handshake();
        wire.AdvanceTo(TimeSpan.FromSeconds(10));
        wire.B.Peer.CurrentKeypair!.SendCounter = ProtocolConstants.RekeyAfterMessages + 1;
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.B, wire.PacketFrom(wire.B)));
        Assert.Single(wire.Sent(wire.B, MessageType.Initiation));
        Assert.Single(wire.A.Received);
        Assert.Equal(2, wire.A.Peer.Counters.HandshakesCompleted);
        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }

    [Fact]
    public void At_reject_after_messages_the_keypair_is_no_longer_used_and_the_packet_waits_for_a_new_one()
    {
        var wire = new WireHarness(seed: 72);
        wire.Handshake();
        wire.AdvanceTo(TimeSpan.FromSeconds(10));
        var exhausted = wire.A.Peer.CurrentKeypair!;
        exhausted.SendCounter = ProtocolConstants.RejectAfterMessages;
        var packet = wire.PacketFrom(wire.A);
        Assert.Equal(SealResult.Queued, wire.SendPacket(wire.A, packet));
        Assert.Equal(2, wire.Sent(wire.A, MessageType.Initiation).Count);
        Assert.NotSame(exhausted, wire.A.Peer.CurrentKeypair);
        Assert.Equal(packet, Assert.Single(wire.B.Received).Packet);
        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }
}
