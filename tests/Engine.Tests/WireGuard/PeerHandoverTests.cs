using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// A device rebuilt with the same static key (the host's rebuild for a jumbo MTU) takes its peers'
/// sessions over (<see cref="Peer.HandOver"/>, <see cref="Peer.TakeOver"/>), as wireguard-go keeps
/// them through an MTU change: no new handshake, the sending counter goes on, and a response to an
/// initiation sent before the rebuild completes it.
/// </summary>
public class PeerHandoverTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    private Firezone.Actors.Engine.Buffers.PacketBufferPool? OldPool;

    /// <summary>Hands A's peer over to a fresh peer of a new device with <paramref name="privateKey"/>; returns what TakeOver said.</summary>
    private bool RebuildA(WireHarness wire, Firezone.Actors.Engine.WireGuard.WireGuardKey privateKey, Action<Device>? beforeTakeOver = null)
    {
        var handover = wire.A.Peer.HandOver();
        Assert.NotNull(handover);
        var config = wire.A.Peer.Config;
        var endpoint = wire.A.Peer.Endpoint;
        var localAddress = wire.A.Peer.LocalAddress;
        wire.A.Peer.Dispose();
        OldPool = wire.A.ReplaceDevice(privateKey, new SeededRandomSource(9001));
        beforeTakeOver?.Invoke(wire.A.Device);
        wire.A.Peer = new Peer(wire.A.Device, config);
        wire.A.Peer.RestoreEndpoint(endpoint, localAddress);
        bool taken = wire.A.Peer.TakeOver(handover!, wire.Now);
        wire.A.Peer.Start(wire.Now);
        return taken;
    }

    private static ulong LastCounter(WireHarness wire, Node from) =>
        BinaryPrimitives.ReadUInt64LittleEndian(wire.Sent(from, MessageType.TransportData)[^1].Bytes.AsSpan(8));

    [Fact]
    public void A_peer_of_a_rebuilt_device_goes_on_with_the_session_without_a_handshake()
    {
        var wire = new WireHarness(seed: 811);
        wire.Handshake();
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 1)));
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: 2));
        ulong counterBefore = LastCounter(wire, wire.A);
        int initiations = wire.Sent(wire.A, MessageType.Initiation).Count;
        var lastHandshake = wire.A.Peer.LastHandshakeUtc;

        wire.Advance(S(1));
        Assert.True(RebuildA(wire, wire.PrivateA));
        Assert.Equal(0, OldPool!.Outstanding);

        Assert.True(wire.A.Peer.HasSession(wire.Now));
        Assert.Equal(lastHandshake, wire.A.Peer.LastHandshakeUtc);
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 3)));
        Assert.Equal(counterBefore + 1, LastCounter(wire, wire.A)); // the counter goes on (never reused, section 5.4.6)
        Assert.Equal(OpenResult.Packet, wire.B.Deliveries[^1].Open);
        // B's reply is addressed to the keypair's index, which the new device's table now routes.
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: 4));
        Assert.Equal(OpenResult.Packet, wire.A.Deliveries[^1].Open);
        Assert.Equal(2, wire.A.Received.Count);
        Assert.Equal(initiations, wire.Sent(wire.A, MessageType.Initiation).Count);
        Assert.Empty(wire.Sent(wire.B, MessageType.Initiation));

        // The timers carried on too: idle past Keepalive-Timeout after receiving, A sends B a keepalive on the same session.
        int before = wire.Sent(wire.A, MessageType.TransportData).Count;
        wire.Advance(S(11));
        Assert.True(wire.Sent(wire.A, MessageType.TransportData).Count > before);
        Assert.Equal(initiations, wire.Sent(wire.A, MessageType.Initiation).Count);
        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }

    [Fact]
    public void The_session_goes_on_from_the_local_address_the_peer_contacted()
    {
        // The host's rebuilt tunnel has fresh slots, so PeerConnection restores no last path there:
        // the new peer has only the endpoint the host remembered in its config. The session's
        // replies must still leave from the address the other side contacted (a Gateway with
        // several addresses), as before the rebuild and as wireguard-go's through an MTU change;
        // from another one a stateful firewall in front of that side drops them, and a WireGuard
        // peer moves its endpoint to the new source.
        var wire = new WireHarness(seed: 817);
        var second = UdpEndpoint.FromIPv4([192, 0, 2, 99], 0); // B reaches A at A's second address
        wire.A.LocalAddress = second;
        wire.Handshake();
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B));
        Assert.Equal(second, wire.A.Peer.LocalAddress);

        var handover = wire.A.Peer.HandOver()!;
        var config = wire.A.Peer.Config with { Endpoint = wire.A.Peer.Endpoint }; // CarryPeerStateAsync's Remember
        wire.A.Peer.Dispose();
        var oldPool = wire.A.ReplaceDevice(wire.PrivateA, new SeededRandomSource(9001));
        wire.A.Peer = new Peer(wire.A.Device, config); // no RestoreEndpoint: a fresh slot has no last path
        Assert.True(wire.A.Peer.TakeOver(handover, wire.Now));
        wire.A.Peer.Start(wire.Now);

        Assert.Equal(second, wire.A.Peer.LocalAddress);
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A)));
        Assert.Equal(second, wire.WireSource[^1]);
        Assert.Equal(0, oldPool.Outstanding);
        wire.A.Peer.Dispose();
        wire.B.Peer.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }

    [Fact]
    public void A_response_to_an_initiation_sent_before_the_rebuild_completes_the_handshake_after_it()
    {
        var wire = new WireHarness(seed: 812);
        wire.A.Peer.Connect(wire.Now);
        Assert.True(wire.A.Peer.PollTransmit(out var initiation)); // in flight while A is rebuilt
        Assert.True(RebuildA(wire, wire.PrivateA));

        wire.Send(wire.A, initiation);
        wire.Pump();

        var response = wire.A.Deliveries.Single(d => d.Type == MessageType.Response);
        Assert.Equal(HandshakeResult.Accepted, response.Handshake);
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        Assert.Single(wire.Sent(wire.A, MessageType.Initiation));
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A)));
        Assert.Single(wire.B.Received);
        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
    }

    [Fact]
    public void A_packet_held_for_the_handshake_goes_on_in_the_new_devices_buffer()
    {
        var wire = new WireHarness(seed: 817);
        var packet = wire.PacketFrom(wire.A, length: 300, ecn: Firezone.Actors.Engine.Ecn.Ect0, tag: 9);
        var buffer = TestPackets.Rent(wire.A.Pool, packet, Firezone.Actors.Engine.Ecn.Ect0);
        Assert.Equal(SealResult.Queued, wire.A.Peer.HandleTunPacket(buffer, wire.Now)); // held, handshake started
        Assert.True(wire.A.Peer.PollTransmit(out var initiation));
        var oldPool = wire.A.Pool;

        Assert.True(RebuildA(wire, wire.PrivateA));
        Assert.Equal(1, wire.A.Peer.StagedCount);
        Assert.Equal(1, oldPool.Outstanding); // only the initiation on its way, not the held packet
        wire.Send(wire.A, initiation);
        wire.Pump();

        Assert.Equal(0, oldPool.Outstanding);
        var (received, outer) = Assert.Single(wire.B.Received);
        Assert.Equal(packet, received);
        Assert.Equal(Firezone.Actors.Engine.Ecn.Ect0, outer); // its outer codepoint came along
        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
    }

    [Fact]
    public void A_device_with_another_static_key_does_not_take_the_sessions_over()
    {
        var wire = new WireHarness(seed: 813);
        wire.Handshake();
        var otherKey = WireHarness.RandomKey(new SeededRandomSource(4242));

        Assert.False(RebuildA(wire, otherKey));

        Assert.False(wire.A.Peer.HasSession(wire.Now));
        Assert.Equal(0, wire.A.Device.Indices.Count);
        wire.Dispose();
    }

    [Fact]
    public void A_receiver_index_taken_on_the_new_device_drops_the_session_that_used_it()
    {
        var wire = new WireHarness(seed: 814);
        wire.Handshake();
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B));
        uint aIndex = BinaryPrimitives.ReadUInt32LittleEndian(wire.Sent(wire.B, MessageType.TransportData)[^1].Bytes.AsSpan(4));
        var someoneElse = WireHarness.RandomKey(new SeededRandomSource(77));

        Assert.True(RebuildA(wire, wire.PrivateA, device => Assert.True(device.Indices.TryClaim(aIndex, someoneElse))));

        Assert.False(wire.A.Peer.HasSession(wire.Now));
        Assert.True(wire.A.Device.Indices.TryLookup(aIndex, out var owner));
        Assert.Equal(someoneElse, owner); // not taken from its holder
        // A later packet starts a handshake, as with no session (not within Rekey-Timeout of the last
        // initiation, section 6.4: that limit came over with the handshake state).
        wire.Advance(S(6));
        Assert.Equal(SealResult.Queued, wire.SendPacket(wire.A, wire.PacketFrom(wire.A)));
        Assert.Equal(2, wire.Sent(wire.A, MessageType.Initiation).Count);
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        wire.Dispose();
    }

    [Fact]
    public void An_initiation_replayed_after_the_rebuild_is_still_refused()
    {
        // B is the rebuilt side here: A's initiation, captured, is replayed to B's new peer.
        var wire = new WireHarness(seed: 815);
        wire.Handshake();
        var captured = wire.Sent(wire.A, MessageType.Initiation)[0].Bytes;
        var handover = wire.B.Peer.HandOver()!;
        var config = wire.B.Peer.Config;
        wire.B.Peer.Dispose();
        wire.B.ReplaceDevice(wire.PrivateB, new SeededRandomSource(9002));
        wire.B.Peer = new Peer(wire.B.Device, config);
        wire.B.Peer.AttachReplayState(new HandshakeReplayState()); // the new tunnel's slot knows nothing yet
        Assert.True(wire.B.Peer.TakeOver(handover, wire.Now));

        wire.Advance(S(2)); // past the flood limit: only the timestamp can refuse it (section 5.1)
        var delivery = wire.Inject(wire.B, captured, wire.A.Endpoint);

        Assert.Equal(HandshakeResult.ReplayedTimestamp, delivery.Handshake);
        Assert.True(wire.B.Peer.HasSession(wire.Now)); // the session it had is untouched
        wire.Dispose();
    }

    [Fact]
    public void A_handover_not_taken_over_frees_its_keys_when_disposed()
    {
        var wire = new WireHarness(seed: 816);
        wire.Handshake();
        var keypair = wire.A.Peer.CurrentKeypair!;
        var handover = wire.A.Peer.HandOver()!;
        Assert.True(handover.HasSession(wire.Now));
        Assert.False(wire.A.Peer.HasSession(wire.Now));
        Assert.Equal(0, wire.A.Device.Indices.Count); // the old device's table let go of them

        handover.Dispose();

        Assert.True(keypair.IsDisposed);
        Assert.False(handover.HasSession(wire.Now));
        wire.Dispose();
    }
    [Fact]
    public void Indices_reserved_for_a_handover_nobody_takes_over_are_freed_when_it_is_disposed()
    {
        // The host reserves the handed-over indices in the rebuilt device's table before its readers
        // start; a peer removed meanwhile (or one whose take-over is refused) never takes them, and
        // no peer of that device would ever free them. An index another peer held is left to it.
        var wire = new WireHarness(seed: 817);
        wire.Handshake();
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B));
        uint aIndex = BinaryPrimitives.ReadUInt32LittleEndian(wire.Sent(wire.B, MessageType.TransportData)[^1].Bytes.AsSpan(4));
        var handover = wire.A.Peer.HandOver()!;
        wire.A.Peer.Dispose();
        wire.A.ReplaceDevice(wire.PrivateA, new SeededRandomSource(9003));
        var table = wire.A.Device.Indices;
        var someoneElse = WireHarness.RandomKey(new SeededRandomSource(78));
        uint held = table.Allocate(someoneElse, new SeededRandomSource(79));

        handover.ReserveIndices(table);
        Assert.True(table.TryLookup(aIndex, out var owner));
        Assert.Equal(handover.PublicKey, owner);
        handover.Dispose();

        Assert.False(table.TryLookup(aIndex, out _)); // was: reserved for good
        Assert.Equal(1, table.Count);
        Assert.True(table.TryLookup(held, out owner));
        Assert.Equal(someoneElse, owner);
        wire.Dispose();
    }

    [Fact]
    public void Indices_reserved_for_a_handover_that_is_taken_over_stay_with_the_peer_until_it_goes()
    {
        var wire = new WireHarness(seed: 818);
        wire.Handshake();
        var handover = wire.A.Peer.HandOver()!;
        var config = wire.A.Peer.Config;
        wire.A.Peer.Dispose();
        wire.A.ReplaceDevice(wire.PrivateA, new SeededRandomSource(9004));
        var table = wire.A.Device.Indices;
        handover.ReserveIndices(table);
        int reserved = table.Count;
        Assert.NotEqual(0, reserved);

        wire.A.Peer = new Peer(wire.A.Device, config);
        Assert.True(wire.A.Peer.TakeOver(handover, wire.Now));
        handover.Dispose(); // emptied by the take-over: frees nothing of the peer's
        Assert.Equal(reserved, table.Count);
        Assert.True(wire.A.Peer.HasSession(wire.Now));

        wire.A.Peer.Dispose();
        Assert.Equal(0, table.Count);
        wire.Dispose();
    }
}
