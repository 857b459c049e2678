using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>Replayed, reordered, truncated, tampered and misaddressed messages.</summary>
public class RejectionTests
{
    private static void AssertNoLeaks(WireHarness wire)
    {
        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }

    /// <summary>Every rejection counter of a peer summed, to check each rejection is counted once.</summary>
    private static long Rejections(PeerCounters c) =>
        c.HandshakeRejections + c.ReplayedTimestamps + c.HandshakeFloods + c.UnexpectedMessages + c.AuthenticationFailures
        + c.ReplayRejections + c.NoKeypairRejections + c.MalformedRejections + c.SourceNotAllowedRejections;

    /// <summary>Seals packets on A without delivering them; returns the datagrams.</summary>
    private static List<byte[]> SealOnA(WireHarness wire, int count, int length = 60)
    {
        var sealedDatagrams = new List<byte[]>(count);
        for (int i = 0; i < count; i++)
        {
            var buffer = TestPackets.Rent(wire.A.Pool, wire.PacketFrom(wire.A, length, tag: i));
            Assert.Equal(SealResult.Sealed, wire.A.Peer.HandleTunPacket(buffer, wire.Now));
            sealedDatagrams.Add(buffer.Data.ToArray());
            buffer.Return();
        }
        return sealedDatagrams;
    }

    [Fact]
    public void A_replayed_transport_message_is_rejected()
    {
        var wire = new WireHarness(seed: 31);
        wire.Handshake();
        var datagram = SealOnA(wire, 1)[0];
        Assert.Equal(OpenResult.Packet, wire.Inject(wire.B, datagram, wire.A.Endpoint).Open);
        Assert.Equal(OpenResult.Replayed, wire.Inject(wire.B, datagram, wire.A.Endpoint).Open);
        Assert.Equal(1, wire.B.Peer.Counters.ReplayRejections);
        Assert.Single(wire.B.Received);
        AssertNoLeaks(wire);
    }

    [Fact]
    public void Reordered_messages_within_the_window_are_accepted_once_and_older_ones_rejected()
    {
        var wire = new WireHarness(seed: 32);
        wire.Handshake();
        var datagrams = SealOnA(wire, 3000, length: 20);
        // Newest first, then the rest backwards: everything within 2048+ of the newest is accepted.
        for (int i = datagrams.Count - 1; i >= datagrams.Count - 2049; i--)
        {
            Assert.Equal(OpenResult.Packet, wire.Inject(wire.B, datagrams[i], wire.A.Endpoint).Open);
        }
        Assert.Equal(OpenResult.Replayed, wire.Inject(wire.B, datagrams[^1], wire.A.Endpoint).Open);
        Assert.Equal(OpenResult.Replayed, wire.Inject(wire.B, datagrams[^2049], wire.A.Endpoint).Open);

        // Counters beyond the window are too old: push the window forward with 9000 more.
        var more = SealOnA(wire, 9000, length: 20);
        Assert.Equal(OpenResult.Packet, wire.Inject(wire.B, more[^1], wire.A.Endpoint).Open);
        Assert.Equal(OpenResult.Replayed, wire.Inject(wire.B, datagrams[0], wire.A.Endpoint).Open);
        Assert.Equal(OpenResult.Packet, wire.Inject(wire.B, more[^2000], wire.A.Endpoint).Open);
        AssertNoLeaks(wire);
    }

    [Fact]
    public void Flipping_any_single_bit_of_a_transport_message_fails_classification_or_authentication()
    {
        var wire = new WireHarness(seed: 33);
        wire.Handshake();
        var original = SealOnA(wire, 1, length: 60)[0];
        Assert.Equal(96, original.Length);
        var peer = wire.B.Peer;
        var pool = wire.B.Pool;
        long rejectionsBefore = Rejections(peer.Counters);
        for (int bit = 0; bit < original.Length * 8; bit++)
        {
            var tampered = (byte[])original.Clone();
            tampered[bit / 8] ^= (byte)(1 << (bit % 8));
            var buffer = pool.Rent();
            tampered.CopyTo(buffer.Writable);
            buffer.Length = tampered.Length;
            buffer.Endpoint = UdpEndpoint.FromIPv4([203, 0, 113, 9], 9);
            var result = peer.HandleTransportData(buffer, wire.Now);
            buffer.Return();
            // Type/reserved bits fail classification, receiver bits find no keypair, a counter bit
            // turning counter 1 into the already-seen 0 is a replay; everything else fails the tag.
            Assert.True(result is OpenResult.AuthenticationFailed or OpenResult.Malformed or OpenResult.NoKeypair or OpenResult.Replayed,
                $"bit {bit}: {result}");
            if (bit >= 16 * 8)
            {
                Assert.Equal(OpenResult.AuthenticationFailed, result); // payload and tag bits
            }
        }
        Assert.Equal(original.Length * 8, Rejections(peer.Counters) - rejectionsBefore);
        // No tampered copy moved the endpoint (roaming follows authenticated datagrams only).
        Assert.Equal(wire.A.Endpoint, peer.Endpoint);
        // The untouched original still opens: the failures left no trace in the replay window.
        Assert.Equal(OpenResult.Packet, wire.Inject(wire.B, original, wire.A.Endpoint).Open);
        AssertNoLeaks(wire);
    }

    [Fact]
    public void Flipping_any_bit_of_an_initiation_before_mac2_is_rejected_by_mac1()
    {
        var wire = new WireHarness(seed: 34);
        wire.OnWire = (_, _) => false;
        wire.A.Peer.Connect(wire.Now);
        wire.Pump();
        var initiation = wire.Wire[0].Bytes;
        for (int bit = 0; bit < MessageHeader.InitiationSize * 8 - 16 * 8; bit++)
        {
            var tampered = (byte[])initiation.Clone();
            tampered[bit / 8] ^= (byte)(1 << (bit % 8));
            var delivery = wire.Inject(wire.B, tampered, wire.A.Endpoint);
            Assert.True(delivery.Admission == HandshakeAdmission.Reject || delivery.Type == MessageType.Invalid, $"bit {bit}");
        }
        Assert.Equal(HandshakeResult.Accepted, wire.Inject(wire.B, initiation, wire.A.Endpoint).Handshake);
        AssertNoLeaks(wire);
    }

    [Fact]
    public void Truncated_messages_of_every_type_are_rejected_and_counted()
    {
        var wire = new WireHarness(seed: 35);
        int responses = 0;
        wire.OnWire = (from, datagram) => MessageHeader.Classify(datagram.Data, out _) != MessageType.Response || responses++ > 0;
        wire.Handshake();
        wire.OnWire = null;
        wire.AdvanceTo(TimeSpan.FromSeconds(6));
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A, 300));
        var initiation = wire.Sent(wire.A, MessageType.Initiation)[0].Bytes;
        var response = wire.Sent(wire.B, MessageType.Response)[0].Bytes;
        var transport = wire.Sent(wire.A, MessageType.TransportData)[^1].Bytes;

        foreach (var (message, peer, pool, device) in new[]
                 {
                     (initiation, wire.B.Peer, wire.B.Pool, wire.B.Device),
                     (response, wire.A.Peer, wire.A.Pool, wire.A.Device),
                     (transport, wire.B.Peer, wire.B.Pool, wire.B.Device),
                 })
        {
            for (int length = 0; length < message.Length; length++)
            {
                var buffer = pool.Rent();
                message.AsSpan(0, length).CopyTo(buffer.Writable);
                buffer.Length = length;
                long before = Rejections(peer.Counters);
                long deviceBefore = device.Counters.Malformed;
                Assert.Equal(HandshakeAdmission.Reject, device.AdmitHandshake(buffer, false, wire.Now, out _));
                Assert.Equal(deviceBefore + 1, device.Counters.Malformed);
                Assert.False(device.TryIdentifyInitiator(buffer.Data, out _));
                Assert.NotEqual(HandshakeResult.Accepted, peer.HandleHandshakeMessage(buffer, wire.Now));
                Assert.NotEqual(OpenResult.Packet, peer.HandleTransportData(buffer, wire.Now));
                buffer.Return();
                Assert.Equal(before + 2, Rejections(peer.Counters));
            }
        }
        AssertNoLeaks(wire);
    }

    [Fact]
    public void Random_datagrams_of_every_type_and_size_never_throw_and_are_counted()
    {
        var wire = new WireHarness(seed: 36);
        wire.Handshake();
        var random = new Random(36);
        MessageHeader.Classify(wire.Sent(wire.A, MessageType.TransportData)[0].Bytes, out uint liveIndex);
        int[] sizes = [0, 1, 3, 4, 15, 16, 31, 32, 33, 47, 48, 63, 64, 65, 91, 92, 93, 147, 148, 149, 200, 1500];
        for (int i = 0; i < 3000; i++)
        {
            int size = sizes[random.Next(sizes.Length)];
            var bytes = new byte[size];
            random.NextBytes(bytes);
            if (size >= 4 && random.Next(4) != 0)
            {
                bytes[0] = (byte)random.Next(0, 6);
                bytes[1] = bytes[2] = bytes[3] = 0;
            }
            if (size >= 8 && random.Next(3) == 0)
            {
                // Aim at a live receiver index so decryption is attempted.
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(bytes[0] == 2 ? 8 : 4), liveIndex);
            }
            var node = random.Next(2) == 0 ? wire.A : wire.B;
            var buffer = node.Pool.Rent();
            bytes.CopyTo(buffer.Writable);
            buffer.Length = size;
            buffer.Endpoint = UdpEndpoint.FromIPv4([203, 0, 113, 7], 7);

            long before = Rejections(node.Peer.Counters);
            long deviceBefore = node.Device.Counters.Malformed + node.Device.Counters.Mac1Failures;
            var admission = node.Device.AdmitHandshake(buffer, underLoad: random.Next(2) == 0, wire.Now, out var cookie);
            cookie?.Return();
            if (admission == HandshakeAdmission.Reject)
            {
                Assert.Equal(deviceBefore + 1, node.Device.Counters.Malformed + node.Device.Counters.Mac1Failures);
            }
            node.Device.TryIdentifyInitiator(buffer.Data, out _);
            var handshake = node.Peer.HandleHandshakeMessage(buffer, wire.Now);
            var open = node.Peer.HandleTransportData(buffer, wire.Now);
            buffer.Return();
            Assert.NotEqual(HandshakeResult.Accepted, handshake);
            Assert.True(open is not (OpenResult.Packet or OpenResult.Keepalive));
            Assert.Equal(before + 2, Rejections(node.Peer.Counters));
            Assert.Equal(wire.B.Endpoint, wire.A.Peer.Endpoint);
        }
        // The session survived the noise.
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A)));
        Assert.Single(wire.B.Received);
        AssertNoLeaks(wire);
    }

    [Fact]
    public void An_authenticated_payload_that_is_not_an_ip_packet_is_malformed()
    {
        var wire = new WireHarness(seed: 37);
        wire.Handshake();
        var notIp = new byte[40];
        notIp[0] = 0x70; // version 7
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, notIp));
        var truncatedIp = wire.PacketFrom(wire.A, 100);
        BinaryPrimitives.WriteUInt16BigEndian(truncatedIp.AsSpan(2), 400); // claims more than it carries
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, truncatedIp));
        Assert.Equal(2, wire.B.Peer.Counters.MalformedRejections);
        Assert.Equal([OpenResult.Malformed, OpenResult.Malformed], wire.B.Deliveries.TakeLast(2).Select(d => d.Open));
        Assert.Empty(wire.B.Received);
        AssertNoLeaks(wire);
    }

    [Fact]
    public void An_inner_source_outside_the_peers_allowed_ips_is_rejected()
    {
        var wire = new WireHarness(seed: 38);
        wire.Handshake();
        var spoofed = TestPackets.Ipv4([10, 10, 0, 99], WireHarness.AddressB, 60);
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, spoofed));
        Assert.Equal(OpenResult.SourceNotAllowed, wire.B.Deliveries[^1].Open);
        Assert.Equal(1, wire.B.Peer.Counters.SourceNotAllowedRejections);
        var v6 = TestPackets.Ipv6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], new byte[16], 60);
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, v6));
        Assert.Equal(OpenResult.Packet, wire.B.Deliveries[^1].Open);
        Assert.Single(wire.B.Received);
        AssertNoLeaks(wire);
    }

    [Fact]
    public void A_replayed_initiation_is_rejected_by_its_timestamp()
    {
        var wire = new WireHarness(seed: 39);
        wire.Handshake();
        var initiation = wire.Sent(wire.A, MessageType.Initiation)[0].Bytes;
        wire.AdvanceTo(TimeSpan.FromSeconds(1));
        var delivery = wire.Inject(wire.B, initiation, UdpEndpoint.FromIPv4([203, 0, 113, 1], 1));
        Assert.Equal(HandshakeResult.ReplayedTimestamp, delivery.Handshake);
        Assert.Equal(1, wire.B.Peer.Counters.ReplayedTimestamps);
        Assert.Equal(wire.A.Endpoint, wire.B.Peer.Endpoint); // a replay does not move the endpoint
        Assert.True(wire.B.Peer.HasSession(wire.Now));

        // A response replayed after the handshake finished is unexpected.
        var response = wire.Sent(wire.B, MessageType.Response)[0].Bytes;
        Assert.Equal(HandshakeResult.Unexpected, wire.Inject(wire.A, response, wire.B.Endpoint).Handshake);
        Assert.Equal(1, wire.A.Peer.Counters.UnexpectedMessages);
        AssertNoLeaks(wire);
    }

    [Fact]
    public void Under_load_with_no_buffer_for_a_cookie_reply_an_initiation_is_overloaded_not_rejected()
    {
        var wire = new WireHarness(seed: 71);
        var senderPool = new PacketBufferPool(preallocate: 2);
        var sender = new Device(WireHarness.RandomKey(new SeededRandomSource(7171)), senderPool, new SeededRandomSource(72), wire.WallClockAtZero);
        var senderPeer = new Peer(sender, new PeerConfig { PublicKey = wire.B.Device.PublicKey, Endpoint = wire.B.Endpoint });
        senderPeer.Connect(wire.Now);
        Assert.True(senderPeer.PollTransmit(out var initiation));
        var copy = wire.B.Pool.Rent();
        initiation.Data.CopyTo(copy.Writable);
        copy.Length = initiation.Length;
        initiation.Return();

        // B's pool is empty: the cookie reply (whitepaper section 5.3) has no buffer. The mac1 was
        // fine, so this is overload, not the bad mac1 a Reject means.
        var held = new List<PacketBuffer>();
        while (wire.B.Pool.TryRent(out var buffer))
        {
            held.Add(buffer);
        }
        long mac1Failures = wire.B.Device.Counters.Mac1Failures;
        Assert.Equal(HandshakeAdmission.Overloaded, wire.B.Device.AdmitHandshake(copy, underLoad: true, wire.Now, out var cookie));
        Assert.Null(cookie);
        Assert.Equal(mac1Failures, wire.B.Device.Counters.Mac1Failures);
        held.ForEach(b => b.Return());
        Assert.Equal(HandshakeAdmission.SendCookie, wire.B.Device.AdmitHandshake(copy, underLoad: true, wire.Now, out cookie));
        cookie!.Return();
        copy.Return();
        senderPeer.Dispose();
        Assert.Equal(0, senderPool.Outstanding);
        AssertNoLeaks(wire);
    }

    [Fact]
    public void An_unknown_initiator_is_identified_but_refused_by_the_peer()
    {
        var wire = new WireHarness(seed: 40);
        var strangerKey = WireHarness.RandomKey(new SeededRandomSource(4040));
        var strangerPool = new PacketBufferPool(preallocate: 2);
        var stranger = new Device(strangerKey, strangerPool, new SeededRandomSource(41), wire.WallClockAtZero);
        var strangerPeer = new Peer(stranger, new PeerConfig { PublicKey = wire.B.Device.PublicKey, Endpoint = wire.B.Endpoint });
        strangerPeer.Connect(wire.Now);
        Assert.True(strangerPeer.PollTransmit(out var initiation));

        var copy = wire.B.Pool.Rent();
        initiation.Data.CopyTo(copy.Writable);
        copy.Length = initiation.Length;
        initiation.Return();
        Assert.Equal(HandshakeAdmission.Accept, wire.B.Device.AdmitHandshake(copy, false, wire.Now, out _)); // mac1 only needs B's public key
        Assert.True(wire.B.Device.TryIdentifyInitiator(copy.Data, out var who));
        Assert.Equal(stranger.PublicKey, who);
        Assert.NotEqual(wire.A.Device.PublicKey, who);
        Assert.Equal(HandshakeResult.Rejected, wire.B.Peer.HandleHandshakeMessage(copy, wire.Now));
        copy.Return();
        Assert.Equal(1, wire.B.Peer.Counters.HandshakeRejections);
        Assert.False(wire.B.Peer.PollTransmit(out _));

        strangerPeer.Dispose();
        Assert.Equal(0, strangerPool.Outstanding);
        AssertNoLeaks(wire);
    }

    [Fact]
    public void An_initiator_holding_the_wrong_responder_key_fails_mac1()
    {
        var wire = new WireHarness(seed: 42);
        var wrong = WireHarness.RandomKey(new SeededRandomSource(4242));
        var wrongPeer = new Peer(wire.A.Device, new PeerConfig { PublicKey = wrong, Endpoint = wire.B.Endpoint, AllowedIps = [IpPrefix.Parse("10.99.0.0/16")] });
        wrongPeer.Connect(wire.Now);
        Assert.True(wrongPeer.PollTransmit(out var initiation));
        var delivery = wire.Send(wire.A, initiation);
        Assert.Equal(HandshakeAdmission.Reject, delivery!.Value.Admission);
        Assert.Equal(1, wire.B.Device.Counters.Mac1Failures);
        wrongPeer.Dispose();
        AssertNoLeaks(wire);
    }

    [Fact]
    public void A_responder_expecting_another_initiator_key_rejects_the_initiation()
    {
        var wire = new WireHarness(seed: 43);
        // Replace B's peer with one that expects some other key than A's.
        wire.B.Peer.Dispose();
        var expected = WireHarness.RandomKey(new SeededRandomSource(4343));
        wire.B.Peer = new Peer(wire.B.Device, new PeerConfig { PublicKey = expected });
        wire.A.Peer.Connect(wire.Now);
        Assert.True(wire.A.Peer.PollTransmit(out var initiation));
        var copy = wire.B.Pool.Rent();
        initiation.Data.CopyTo(copy.Writable);
        copy.Length = initiation.Length;
        initiation.Return();
        Assert.Equal(HandshakeResult.Rejected, wire.B.Peer.HandleHandshakeMessage(copy, wire.Now));
        copy.Return();
        Assert.Equal(1, wire.B.Peer.Counters.HandshakeRejections);
        Assert.False(wire.B.Peer.PollTransmit(out _));
        AssertNoLeaks(wire);
    }
}
