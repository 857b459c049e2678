using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

using Ecn = Firezone.Actors.Engine.Ecn;

public class HandshakeAndDataTests
{
    [Fact]
    public void Two_engines_handshake_and_exchange_data_both_ways()
    {
        var wire = new WireHarness();
        wire.Handshake();

        // Initiation, response, and A's confirming keepalive.
        Assert.Equal(3, wire.Wire.Count);
        Assert.Equal(MessageHeader.InitiationSize, wire.Wire[0].Bytes.Length);
        Assert.Equal(MessageHeader.ResponseSize, wire.Wire[1].Bytes.Length);
        Assert.Equal(MessageHeader.TransportMinSize, wire.Wire[2].Bytes.Length);
        Assert.Equal(OpenResult.Keepalive, wire.B.Deliveries[^1].Open);
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        Assert.True(wire.B.Peer.HasSession(wire.Now));
        Assert.Equal(1, wire.A.Peer.Counters.HandshakesCompleted);
        Assert.Equal(1, wire.B.Peer.Counters.HandshakesCompleted);
        Assert.Equal(wire.WallClockAtZero, wire.A.Peer.LastHandshakeUtc);

        var fromA = wire.PacketFrom(wire.A, 1420, tag: 1);
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, fromA));
        var fromB = TestPackets.Ipv6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 77, tag: 2);
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.B, fromB));

        Assert.Equal(fromA, Assert.Single(wire.B.Received).Packet);
        Assert.Equal(fromB, Assert.Single(wire.A.Received).Packet);
        // 1420 padded to 1424: 16 + 1424 + 16.
        Assert.Equal(1456, wire.Wire[3].Bytes.Length);
        Assert.Equal(16 + 80 + 16, wire.Wire[4].Bytes.Length);
        Assert.Equal(wire.A.Endpoint, wire.B.Peer.Endpoint);
        Assert.Equal(wire.A.Peer.TxBytes, wire.B.Peer.RxBytes);
        Assert.Equal(wire.B.Peer.TxBytes, wire.A.Peer.RxBytes);

        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
        Assert.Equal(0, wire.A.Device.Indices.Count);
        Assert.Equal(0, wire.B.Device.Indices.Count);
    }

    [Fact]
    public void Packets_sent_before_the_session_are_queued_then_flushed_sealed_with_their_ecn()
    {
        var wire = new WireHarness();
        var first = wire.PacketFrom(wire.A, 60, Ecn.Ect0, tag: 1);
        var second = wire.PacketFrom(wire.A, 61, Ecn.Ce, tag: 2);

        wire.OnWire = (_, _) => false; // hold the handshake back so both packets queue
        var buffer1 = TestPackets.Rent(wire.A.Pool, first, Ecn.Ect0);
        var buffer2 = TestPackets.Rent(wire.A.Pool, second, Ecn.Ce);
        Assert.Equal(SealResult.Queued, wire.A.Peer.HandleTunPacket(buffer1, wire.Now));
        Assert.Equal(SealResult.Queued, wire.A.Peer.HandleTunPacket(buffer2, wire.Now));
        Assert.Equal(2, wire.A.Peer.StagedCount);
        wire.Pump(); // the initiation is lost
        wire.OnWire = null;

        wire.Advance(TimeSpan.FromSeconds(6)); // retransmission completes the handshake

        Assert.Equal(0, wire.A.Peer.StagedCount);
        Assert.Equal(2, wire.B.Received.Count);
        Assert.Equal(first, wire.B.Received[0].Packet);
        Assert.Equal(Ecn.Ect0, wire.B.Received[0].OuterEcn);
        Assert.Equal(second, wire.B.Received[1].Packet);
        Assert.Equal(Ecn.Ce, wire.B.Received[1].OuterEcn);

        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }

    [Fact]
    public void An_IPv4_packet_with_options_crosses_the_tunnel_unchanged()
    {
        // IGMP with Router Alert (RFC 2113, IHL 6): WireGuard carries any IP packet, options included.
        var wire = new WireHarness(seed: 91);
        wire.Handshake();
        var packet = Firezone.Actors.Engine.Tests.Packets.PacketFactory.Ipv4(
            tos: 0x02, payloadLength: 8, protocol: 2,
            source: System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(WireHarness.AddressA),
            destination: System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(WireHarness.AddressB),
            optionWords: 1);
        Assert.Equal(0x46, packet[0]);

        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, packet));

        Assert.Equal(packet, Assert.Single(wire.B.Received).Packet);
        Assert.Equal(0, wire.B.Peer.Counters.MalformedRejections);
        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }
}
