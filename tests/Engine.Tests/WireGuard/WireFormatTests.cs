using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// Byte-exactness: the engine's messages against <see cref="ReferenceWireGuard"/> (an independent
/// plain implementation of whitepaper section 5.4), plus sizes and field offsets.
/// </summary>
public class WireFormatTests
{
    private static readonly DateTime WallClock = new(2026, 11, 25, 15, 30, 0, DateTimeKind.Utc);
    private static readonly UdpEndpoint EndpointA = UdpEndpoint.FromIPv4([198, 51, 100, 1], 40000);
    private static readonly UdpEndpoint EndpointB = UdpEndpoint.FromIPv4([198, 51, 100, 2], 51820);

    [Fact]
    public void Initiation_is_byte_identical_to_the_reference_construction()
    {
        var privateA = ReferenceWireGuard.KeyBytes(101);
        var privateB = ReferenceWireGuard.KeyBytes(102);
        var publicB = ReferenceWireGuard.PublicKey(ReferenceWireGuard.Clamp(privateB));
        var pool = new PacketBufferPool(preallocate: 4);
        var random = new RecordingRandomSource(new SeededRandomSource(5));
        var device = new Device(new WireGuardKey(privateA), pool, random, WallClock);
        var peer = new Peer(device, new PeerConfig { PublicKey = new WireGuardKey(publicB), Endpoint = EndpointB });
        var now = TimeSpan.FromMilliseconds(12_345.678);

        peer.Connect(now);
        Assert.True(peer.PollTransmit(out var datagram));
        var initiation = datagram.Data.ToArray();
        Assert.Equal(EndpointB, datagram.Endpoint);
        datagram.Return();

        var ephemeral = Assert.Single(random.Fills, fill => fill.Length == 32);
        uint sender = BinaryPrimitives.ReadUInt32LittleEndian(initiation.AsSpan(4));
        var expected = ReferenceWireGuard.CreateInitiation(
            ReferenceWireGuard.Clamp(privateA), publicB, ReferenceWireGuard.Clamp(ephemeral), sender,
            ReferenceWireGuard.Tai64N(WallClock + now), out _);

        Assert.Equal(MessageHeader.InitiationSize, initiation.Length);
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(initiation));
        Assert.True(device.Indices.TryLookup(sender, out var owner));
        Assert.Equal(new WireGuardKey(publicB), owner);

        peer.Dispose();
        Assert.Equal(0, pool.Outstanding);
        Assert.Equal(0, device.Indices.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Engine_responder_interoperates_with_the_reference_initiator_byte_for_byte(bool withPresharedKey)
    {
        var privateA = ReferenceWireGuard.Clamp(ReferenceWireGuard.KeyBytes(201));
        var privateB = ReferenceWireGuard.KeyBytes(202);
        var publicA = ReferenceWireGuard.PublicKey(privateA);
        var publicB = ReferenceWireGuard.PublicKey(ReferenceWireGuard.Clamp(privateB));
        var psk = withPresharedKey ? ReferenceWireGuard.KeyBytes(203) : new byte[32];

        var pool = new PacketBufferPool(preallocate: 4);
        var random = new RecordingRandomSource(new SeededRandomSource(9));
        var device = new Device(new WireGuardKey(privateB), pool, random, WallClock) { PeersWriteAllowedIps = true };
        var peer = new Peer(device, new PeerConfig
        {
            PublicKey = new WireGuardKey(publicA),
            PresharedKey = withPresharedKey ? new WireGuardKey(psk) : null,
            AllowedIps = [IpPrefix.Parse("10.20.0.1/32")],
        });
        var now = TimeSpan.FromSeconds(3);

        // The reference initiates.
        var referenceEphemeral = ReferenceWireGuard.Clamp(ReferenceWireGuard.KeyBytes(204));
        var initiation = ReferenceWireGuard.CreateInitiation(privateA, publicB, referenceEphemeral, 0x11223344,
            ReferenceWireGuard.Tai64N(WallClock), out var initiator);
        var buffer = Datagram(pool, initiation, EndpointA);
        Assert.Equal(HandshakeAdmission.Accept, device.AdmitHandshake(buffer, underLoad: false, now, out _));
        Assert.True(device.TryIdentifyInitiator(buffer.Data, out var identified));
        Assert.Equal(new WireGuardKey(publicA), identified);
        int fillsBefore = random.Fills.Count;
        Assert.Equal(HandshakeResult.Accepted, peer.HandleHandshakeMessage(buffer, now));
        buffer.Return();
        Assert.Equal(EndpointA, peer.Endpoint);

        Assert.True(peer.PollTransmit(out var responseBuffer));
        var response = responseBuffer.Data.ToArray();
        Assert.Equal(EndpointA, responseBuffer.Endpoint);
        responseBuffer.Return();
        Assert.Equal(MessageHeader.ResponseSize, response.Length);

        // The same response, computed by the reference from the engine's ephemeral key.
        var engineEphemeral = Assert.Single(random.Fills.Skip(fillsBefore), fill => fill.Length == 32);
        var responderState = ReferenceWireGuard.ConsumeInitiation(initiation, ReferenceWireGuard.Clamp(privateB), publicA, out _)!;
        uint engineSender = BinaryPrimitives.ReadUInt32LittleEndian(response.AsSpan(4));
        var expectedResponse = ReferenceWireGuard.CreateResponse(responderState, publicA, ReferenceWireGuard.Clamp(engineEphemeral), engineSender, psk);
        Assert.Equal(Convert.ToHexString(expectedResponse), Convert.ToHexString(response));
        Assert.Equal(0x11223344u, BinaryPrimitives.ReadUInt32LittleEndian(response.AsSpan(8)));

        // The reference consumes the response and both sides exchange transport data.
        Assert.True(ReferenceWireGuard.ConsumeResponse(initiator, response, privateA, psk, out var sendKey, out var receiveKey));
        var inner = TestPackets.Ipv4([10, 20, 0, 1], [10, 20, 0, 2], 45, tag: 3);
        var transport = ReferenceWireGuard.Transport(sendKey, engineSender, 0, inner);
        Assert.Equal(16 + 48 + 16, transport.Length);
        buffer = Datagram(pool, transport, EndpointA);
        Assert.Equal(OpenResult.Packet, peer.HandleTransportData(buffer, now));
        Assert.Equal(inner, buffer.Data.ToArray());
        buffer.Return();
        Assert.Equal(WallClock + now, peer.LastHandshakeUtc);

        var reply = TestPackets.Ipv4([10, 20, 0, 2], [10, 20, 0, 1], 33, tag: 4);
        var outbound = TestPackets.Rent(pool, reply);
        Assert.Equal(SealResult.Sealed, peer.HandleTunPacket(outbound, now));
        var sealedReply = outbound.Data.ToArray();
        outbound.Return();
        Assert.Equal(16 + 48 + 16, sealedReply.Length);
        Assert.Equal(new byte[] { 4, 0, 0, 0 }, sealedReply[..4]);
        Assert.Equal(0x11223344u, BinaryPrimitives.ReadUInt32LittleEndian(sealedReply.AsSpan(4)));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(sealedReply.AsSpan(8)));
        var opened = ReferenceWireGuard.AeadOpen(receiveKey, 0, sealedReply[16..], []);
        Assert.NotNull(opened);
        Assert.Equal(reply, opened[..33]);
        Assert.All(opened[33..], b => Assert.Equal(0, b)); // zero padding

        peer.Dispose();
        Assert.Equal(0, pool.Outstanding);
        Assert.Equal(0, device.Indices.Count);
    }

    [Fact]
    public void Engine_initiator_completes_a_handshake_with_the_reference_responder()
    {
        var privateA = ReferenceWireGuard.KeyBytes(301);
        var privateB = ReferenceWireGuard.Clamp(ReferenceWireGuard.KeyBytes(302));
        var publicA = ReferenceWireGuard.PublicKey(ReferenceWireGuard.Clamp(privateA));
        var publicB = ReferenceWireGuard.PublicKey(privateB);
        var pool = new PacketBufferPool(preallocate: 4);
        var device = new Device(new WireGuardKey(privateA), pool, new SeededRandomSource(3), WallClock) { PeersWriteAllowedIps = true };
        var peer = new Peer(device, new PeerConfig
        {
            PublicKey = new WireGuardKey(publicB),
            Endpoint = EndpointB,
            AllowedIps = [IpPrefix.Parse("10.30.0.0/24")],
        });
        var now = TimeSpan.FromSeconds(1);

        // A packet before any session: queued, and an initiation goes out.
        var inner = TestPackets.Ipv4([10, 30, 1, 1], [10, 30, 0, 9], 200, tag: 5);
        var staged = TestPackets.Rent(pool, inner);
        Assert.Equal(SealResult.Queued, peer.HandleTunPacket(staged, now));
        Assert.True(peer.PollTransmit(out var initiationBuffer));
        var initiation = initiationBuffer.Data.ToArray();
        initiationBuffer.Return();

        var state = ReferenceWireGuard.ConsumeInitiation(initiation, privateB, publicA, out var timestamp);
        Assert.NotNull(state);
        Assert.Equal(ReferenceWireGuard.Tai64N(WallClock + now), timestamp);
        var response = ReferenceWireGuard.CreateResponse(state, publicA, ReferenceWireGuard.Clamp(ReferenceWireGuard.KeyBytes(303)), 0xA0B0C0D0, new byte[32]);
        var (sendKey, receiveKey) = ReferenceWireGuard.ResponderKeys(state);

        var buffer = Datagram(pool, response, EndpointB);
        Assert.Equal(HandshakeAdmission.Accept, device.AdmitHandshake(buffer, false, now, out _));
        Assert.Equal(HandshakeResult.Accepted, peer.HandleHandshakeMessage(buffer, now));
        buffer.Return();

        // The queued packet now leaves sealed, addressed to 0xA0B0C0D0 with counter 0.
        Assert.True(peer.PollTransmit(out var dataBuffer));
        var data = dataBuffer.Data.ToArray();
        dataBuffer.Return();
        Assert.False(peer.PollTransmit(out _)); // the data confirms the session; no extra keepalive
        Assert.Equal(16 + 208 + 16, data.Length);
        Assert.Equal(0xA0B0C0D0u, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(4)));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(8)));
        var opened = ReferenceWireGuard.AeadOpen(receiveKey, 0, data[16..], []);
        Assert.NotNull(opened);
        Assert.Equal(inner, opened[..200]);

        // The reference answers with a keepalive (counter 0) and a data packet (counter 1).
        uint engineIndex = BinaryPrimitives.ReadUInt32LittleEndian(initiation.AsSpan(4));
        buffer = Datagram(pool, ReferenceWireGuard.Transport(sendKey, engineIndex, 0, []), EndpointB);
        Assert.Equal(OpenResult.Keepalive, peer.HandleTransportData(buffer, now));
        buffer.Return();
        var back = TestPackets.Ipv4([10, 30, 0, 9], [10, 30, 1, 1], 1420, tag: 6);
        buffer = Datagram(pool, ReferenceWireGuard.Transport(sendKey, engineIndex, 1, back), EndpointB);
        Assert.Equal(OpenResult.Packet, peer.HandleTransportData(buffer, now));
        Assert.Equal(back, buffer.Data.ToArray());
        buffer.Return();

        peer.Dispose();
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void Transport_messages_are_32_plus_padded_length_with_little_endian_counters()
    {
        var wire = new WireHarness(seed: 4);
        wire.Handshake();
        int before = wire.Wire.Count;
        foreach (int length in new[] { 20, 21, 31, 32, 33, 1420, 1500 })
        {
            Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, length)));
        }
        var sent = wire.Wire.Skip(before).Select(w => w.Bytes).ToList();
        int[] expectedPadded = [32, 32, 32, 32, 48, 1424, 1504];
        for (int i = 0; i < sent.Count; i++)
        {
            Assert.Equal(32 + expectedPadded[i], sent[i].Length);
            Assert.Equal(MessageType.TransportData, MessageHeader.Classify(sent[i], out uint receiver));
            Assert.True(wire.B.Device.Indices.TryLookup(receiver, out _));
            // Counter 0 was A's confirming keepalive after the handshake.
            Assert.Equal((ulong)(i + 1), BinaryPrimitives.ReadUInt64LittleEndian(sent[i].AsSpan(8)));
        }
        Assert.Equal(7, wire.B.Received.Count);
        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }

    [Fact]
    public void With_an_mtu_padding_stops_at_the_mtu_as_the_kernel_and_wireguard_go_do()
    {
        var wire = new WireHarness(seed: 5);
        wire.A.Device.Mtu = 1420;
        wire.Handshake();
        int before = wire.Wire.Count;
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, 1420)));
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, 1415)));
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, 100)));
        Assert.Equal(32 + 1420, wire.Wire[before].Bytes.Length);     // not a multiple of 16: capped at the MTU
        Assert.Equal(32 + 1420, wire.Wire[before + 1].Bytes.Length); // 1415 -> 1424 capped to 1420
        Assert.Equal(32 + 112, wire.Wire[before + 2].Bytes.Length);
        Assert.Equal(3, wire.B.Received.Count);
        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }

    [Fact]
    public void Initial_chaining_key_and_hash_match_the_published_constants()
    {
        var c = ReferenceWireGuard.Hash("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"u8.ToArray());
        Assert.Equal(ReferenceWireGuard.InitialChainKey, c);
        Assert.Equal(ReferenceWireGuard.InitialHash, ReferenceWireGuard.Hash(c, "WireGuard v1 zx2c4 Jason@zx2c4.com"u8.ToArray()));
    }

    [Fact]
    public void Tai64n_is_big_endian_seconds_since_1970_plus_2_pow_62_plus_10_and_whitened_nanoseconds()
    {
        var stamp = new byte[12];
        Tai64N.Write(new DateTime(1970, 1, 1, 0, 0, 1, DateTimeKind.Utc).AddTicks(5_000_000), stamp);
        Assert.Equal("400000000000000B", Convert.ToHexString(stamp[..8]));
        Assert.Equal(500_000_000u & ~0xFFFFFFu, BinaryPrimitives.ReadUInt32BigEndian(stamp.AsSpan(8)));
        var later = new byte[12];
        Tai64N.Write(new DateTime(1970, 1, 1, 0, 0, 2, DateTimeKind.Utc), later);
        Assert.True(Tai64N.IsAfter(later, stamp));
        Assert.False(Tai64N.IsAfter(stamp, later));
        Assert.False(Tai64N.IsAfter(stamp, stamp));
    }

    private static PacketBuffer Datagram(PacketBufferPool pool, byte[] bytes, UdpEndpoint source)
    {
        var buffer = pool.Rent();
        bytes.CopyTo(buffer.Writable);
        buffer.Length = bytes.Length;
        buffer.Endpoint = source;
        return buffer;
    }
}
