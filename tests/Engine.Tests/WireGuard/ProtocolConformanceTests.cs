using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// Whitepaper sections 5 and 6 where the engine must do what wireguard-go (device/noise-protocol.go,
/// cookie.go, timers.go) does, driven from an independent initiator (<see cref="ReferenceWireGuard"/>)
/// so that timestamps, indices and timing are the test's to choose.
/// </summary>
public class ProtocolConformanceTests
{
    private static readonly DateTime WallClock = new(2026, 11, 25, 15, 30, 0, DateTimeKind.Utc);
    private static readonly UdpEndpoint EndpointA = UdpEndpoint.FromIPv4([198, 51, 100, 1], 40000);

    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    /// <summary>An engine responder (B) configured for a reference initiator (A).</summary>
    private sealed class Responder : IDisposable
    {
        public readonly byte[] PrivateA = ReferenceWireGuard.Clamp(ReferenceWireGuard.KeyBytes(301));
        public readonly byte[] PublicA;
        public readonly byte[] PublicB;
        public readonly PacketBufferPool Pool = new(preallocate: 8);
        public readonly Device Device;
        public readonly Peer Peer;
        private int _ephemeralSeed = 400;

        public Responder()
        {
            var privateB = ReferenceWireGuard.KeyBytes(302);
            PublicA = ReferenceWireGuard.PublicKey(PrivateA);
            PublicB = ReferenceWireGuard.PublicKey(ReferenceWireGuard.Clamp(privateB));
            Device = new Device(new WireGuardKey(privateB), Pool, new SeededRandomSource(303), WallClock) { PeersWriteAllowedIps = true };
            Peer = new Peer(Device, new PeerConfig
            {
                PublicKey = new WireGuardKey(PublicA),
                AllowedIps = [IpPrefix.Parse("10.30.0.1/32")],
            });
        }

        /// <summary>A reference initiation from A stamped <paramref name="stamp"/>.</summary>
        public byte[] Initiation(DateTime stamp, uint sender, out ReferenceWireGuard.State state) =>
            ReferenceWireGuard.CreateInitiation(PrivateA, PublicB, ReferenceWireGuard.Clamp(ReferenceWireGuard.KeyBytes(_ephemeralSeed++)),
                sender, ReferenceWireGuard.Tai64N(stamp), out state);

        /// <summary>Admits, identifies and hands an initiation to the peer; the response (if any) comes back.</summary>
        public HandshakeResult Deliver(byte[] initiation, TimeSpan now, out byte[]? response)
        {
            var buffer = Datagram(initiation);
            try
            {
                Assert.Equal(HandshakeAdmission.Accept, Device.AdmitHandshake(buffer, underLoad: false, now, out _));
                Assert.True(Device.TryIdentifyInitiator(buffer, out var initiator));
                Assert.Equal(new WireGuardKey(PublicA), initiator);
                var result = Peer.HandleHandshakeMessage(buffer, now);
                response = null;
                while (Peer.PollTransmit(out var sent))
                {
                    if (MessageHeader.Classify(sent.Data, out _) == MessageType.Response)
                    {
                        response = sent.Data.ToArray();
                    }
                    sent.Return();
                }
                return result;
            }
            finally
            {
                buffer.Return();
            }
        }

        public OpenResult DeliverTransport(byte[] transport, TimeSpan now)
        {
            var buffer = Datagram(transport);
            try
            {
                return Peer.HandleTransportData(buffer, now);
            }
            finally
            {
                buffer.Return();
            }
        }

        private PacketBuffer Datagram(byte[] bytes)
        {
            var buffer = Pool.Rent();
            bytes.CopyTo(buffer.Writable);
            buffer.Length = bytes.Length;
            buffer.Endpoint = EndpointA;
            return buffer;
        }

        public void Dispose()
        {
            Peer.Dispose();
            Assert.Equal(0, Pool.Outstanding);
            Assert.Equal(0, Device.Indices.Count);
        }
    }

    [Fact]
    public void Initiations_from_one_peer_faster_than_fifty_a_second_are_dropped_as_a_flood()
    {
        using var b = new Responder();
        Assert.Equal(HandshakeResult.Accepted, b.Deliver(b.Initiation(WallClock, 1, out _), S(3), out var first));
        Assert.NotNull(first);

        // A newer timestamp, but only 20 ms after the last consumed initiation (HandshakeInitationRate).
        var second = b.Initiation(WallClock + S(1), 2, out _);
        Assert.Equal(HandshakeResult.Rejected, b.Deliver(second, S(3.020), out var none));
        Assert.Null(none);
        Assert.Equal(1, b.Peer.Counters.HandshakeFloods);

        // The flood check did not record the timestamp: the same initiation is taken a moment later.
        Assert.Equal(HandshakeResult.Accepted, b.Deliver(second, S(3.021), out var response));
        Assert.NotNull(response);
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(response.AsSpan(8)));
    }

    [Fact]
    public void An_initiation_not_newer_than_the_greatest_timestamp_is_rejected_even_if_never_seen()
    {
        using var b = new Responder();
        Assert.Equal(HandshakeResult.Accepted, b.Deliver(b.Initiation(WallClock + S(10), 1, out _), S(1), out _));
        // Other ephemeral keys (so not a byte-for-byte replay), older and equal timestamps.
        Assert.Equal(HandshakeResult.ReplayedTimestamp, b.Deliver(b.Initiation(WallClock + S(9), 2, out _), S(2), out _));
        Assert.Equal(HandshakeResult.ReplayedTimestamp, b.Deliver(b.Initiation(WallClock + S(10), 3, out _), S(3), out _));
        Assert.Equal(2, b.Peer.Counters.ReplayedTimestamps);
        Assert.Equal(HandshakeResult.Accepted, b.Deliver(b.Initiation(WallClock + S(10.1), 4, out _), S(4), out _));
    }

    [Fact]
    public void A_newer_initiation_before_confirmation_replaces_the_unconfirmed_keypair_and_frees_its_index()
    {
        using var b = new Responder();
        var zeroPsk = new byte[32];
        var init1 = b.Initiation(WallClock + S(1), 1, out var state1);
        Assert.Equal(HandshakeResult.Accepted, b.Deliver(init1, S(1), out var response1));
        var init2 = b.Initiation(WallClock + S(2), 2, out var state2);
        Assert.Equal(HandshakeResult.Accepted, b.Deliver(init2, S(2), out var response2));
        Assert.Equal(1, b.Device.Indices.Count); // the first response's index went with its keypair

        Assert.True(ReferenceWireGuard.ConsumeResponse(state1, response1!, b.PrivateA, zeroPsk, out var send1, out _));
        Assert.True(ReferenceWireGuard.ConsumeResponse(state2, response2!, b.PrivateA, zeroPsk, out var send2, out _));
        var inner = TestPackets.Ipv4([10, 30, 0, 1], [10, 30, 0, 2], 40);
        uint index1 = BinaryPrimitives.ReadUInt32LittleEndian(response1.AsSpan(4));
        uint index2 = BinaryPrimitives.ReadUInt32LittleEndian(response2.AsSpan(4));
        Assert.Equal(OpenResult.NoKeypair, b.DeliverTransport(ReferenceWireGuard.Transport(send1, index1, 0, inner), S(3)));
        Assert.False(b.Peer.HasSession(S(3)));
        Assert.Equal(OpenResult.Packet, b.DeliverTransport(ReferenceWireGuard.Transport(send2, index2, 0, inner), S(3)));
        Assert.True(b.Peer.HasSession(S(3)));
        Assert.Equal(1, b.Device.Indices.Count);
    }

    [Fact]
    public void A_response_to_an_initiation_that_is_not_the_latest_is_unexpected()
    {
        var wire = new WireHarness(seed: 81);
        wire.OnWire = (from, _) => !ReferenceEquals(from, wire.A); // A's initiations are lost
        wire.A.Peer.Connect(wire.Now);
        wire.Pump();
        wire.AdvanceTo(S(5.5)); // one retransmission, with a new sender index
        var initiations = wire.Sent(wire.A, MessageType.Initiation);
        Assert.Equal(2, initiations.Count);
        wire.OnWire = null;

        // B answers the first (older) initiation: A has freed that index, so no peer takes the response.
        wire.Inject(wire.B, initiations[0].Bytes, wire.A.Endpoint);
        wire.Pump();
        Assert.False(wire.A.Device.Indices.TryLookup(BinaryPrimitives.ReadUInt32LittleEndian(initiations[0].Bytes.AsSpan(4)), out _));
        Assert.Equal(HandshakeResult.Rejected, wire.A.Deliveries.Single(d => d.Type == MessageType.Response).Handshake);
        Assert.False(wire.A.Peer.HasSession(wire.Now));

        // The latest one completes the handshake.
        wire.Advance(S(0.1));
        wire.Inject(wire.B, initiations[1].Bytes, wire.A.Endpoint);
        wire.Pump();
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void A_cookie_older_than_two_minutes_is_no_longer_used_for_mac2()
    {
        var wire = new WireHarness(seed: 82);
        wire.B.UnderLoad = true;
        wire.Handshake(); // cookie reply at 0 s
        wire.AdvanceTo(S(6));
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        wire.B.UnderLoad = false;
        var withCookie = wire.Sent(wire.A, MessageType.Initiation)[^1].Bytes;
        Assert.Contains(withCookie[132..], b => b != 0);

        wire.AdvanceTo(S(127)); // the session is old: A rekeys on send, the cookie is 127 s old
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A));
        var rekey = wire.Sent(wire.A, MessageType.Initiation)[^1];
        Assert.Equal(S(127), rekey.At);
        Assert.All(rekey.Bytes[132..], b => Assert.Equal(0, b));
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void A_wrong_mac2_is_not_checked_when_not_under_load()
    {
        using var b = new Responder();
        var initiation = b.Initiation(WallClock, 1, out _);
        initiation[140] ^= 0xff;
        Assert.Equal(HandshakeResult.Accepted, b.Deliver(initiation, S(1), out var response));
        Assert.NotNull(response);
    }

    [Fact]
    public void Transport_data_on_a_handshake_index_is_not_opened()
    {
        var wire = new WireHarness(seed: 83);
        wire.Handshake();
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        // A rekeys; its new initiation's sender index is in the table but belongs to no keypair yet.
        wire.OnWire = (from, _) => !ReferenceEquals(from, wire.A);
        wire.AdvanceTo(S(121));
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A));
        Assert.Equal(2, wire.Sent(wire.A, MessageType.Initiation).Count);
        var rekey = wire.Sent(wire.A, MessageType.Initiation)[^1].Bytes;
        uint handshakeIndex = BinaryPrimitives.ReadUInt32LittleEndian(rekey.AsSpan(4));
        Assert.True(wire.A.Device.Indices.TryLookup(handshakeIndex, out _));
        var forged = new byte[64];
        forged[0] = 4;
        BinaryPrimitives.WriteUInt32LittleEndian(forged.AsSpan(4), handshakeIndex);
        Assert.Equal(OpenResult.NoKeypair, wire.Inject(wire.A, forged, wire.B.Endpoint).Open);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void A_response_with_a_low_order_ephemeral_is_rejected_and_the_real_one_still_completes()
    {
        var wire = new WireHarness(seed: 84);
        wire.OnWire = (from, _) => !ReferenceEquals(from, wire.B); // hold B's response back
        wire.Handshake();
        var response = wire.Sent(wire.B, MessageType.Response).Single().Bytes;
        wire.OnWire = null;

        // Same indices, an all-zero ephemeral (a point of small order: DH gives all zeros), a valid mac1.
        var forged = response.ToArray();
        Array.Clear(forged, 12, 32 + 16);
        var mac1Key = ReferenceWireGuard.Hash(System.Text.Encoding.ASCII.GetBytes("mac1----"), wire.A.Device.PublicKey.ToArray());
        ReferenceWireGuard.Mac(mac1Key, forged[..60]).CopyTo(forged, 60);
        Array.Clear(forged, 76, 16);
        Assert.Equal(HandshakeResult.Rejected, wire.Inject(wire.A, forged, wire.B.Endpoint).Handshake);
        Assert.Equal(1, wire.A.Peer.Counters.HandshakeRejections);
        Assert.False(wire.A.Peer.HasSession(wire.Now));

        Assert.Equal(HandshakeResult.Accepted, wire.Inject(wire.A, response, wire.B.Endpoint).Handshake);
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void The_greatest_timestamp_is_kept_per_peer()
    {
        using var b = new Responder();
        // A second configured peer, C, whose clock is an hour behind A's.
        var privateC = ReferenceWireGuard.Clamp(ReferenceWireGuard.KeyBytes(310));
        var publicC = ReferenceWireGuard.PublicKey(privateC);
        using var peerC = new Peer(b.Device, new PeerConfig { PublicKey = new WireGuardKey(publicC), AllowedIps = [IpPrefix.Parse("10.30.0.3/32")] });
        Assert.Equal(HandshakeResult.Accepted, b.Deliver(b.Initiation(WallClock + S(3600), 1, out _), S(1), out _));

        var fromC = ReferenceWireGuard.CreateInitiation(privateC, b.PublicB, ReferenceWireGuard.Clamp(ReferenceWireGuard.KeyBytes(311)), 7,
            ReferenceWireGuard.Tai64N(WallClock), out _);
        var buffer = b.Pool.Rent();
        fromC.CopyTo(buffer.Writable);
        buffer.Length = fromC.Length;
        buffer.Endpoint = UdpEndpoint.FromIPv4([198, 51, 100, 3], 40000);
        Assert.True(b.Device.TryIdentifyInitiator(buffer, out var initiator));
        Assert.Equal(new WireGuardKey(publicC), initiator);
        Assert.Equal(HandshakeResult.Accepted, peerC.HandleHandshakeMessage(buffer, S(1)));
        buffer.Return();
        while (peerC.PollTransmit(out var sent))
        {
            sent.Return();
        }
    }
}
