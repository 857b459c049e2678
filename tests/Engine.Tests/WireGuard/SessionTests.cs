using System.Buffers.Binary;
using System.Text;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Org.BouncyCastle.Crypto.Parameters;
using BcXChaCha20Poly1305 = Org.BouncyCastle.Crypto.Modes.XChaCha20Poly1305;

namespace Firezone.Actors.Engine.Tests.WireGuard;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>Keypair rotation, roaming, cookies, preshared keys, the staged queue, update and dispose.</summary>
public class SessionTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void Keypair_rotation_loses_no_packet_in_either_direction_over_many_rekeys()
    {
        var wire = new WireHarness(seed: 51);
        int sentByA = 0, sentByB = 0;
        for (int tick = 0; tick < 1000; tick++) // 1000 s: eight rekeys
        {
            wire.AdvanceTo(S(tick));
            wire.SendPacket(wire.A, wire.PacketFrom(wire.A, 80, tag: tick));
            sentByA++;
            if (tick % 3 == 0)
            {
                wire.SendPacket(wire.B, wire.PacketFrom(wire.B, 90, tag: tick));
                sentByB++;
            }
        }
        Assert.Equal(sentByA, wire.B.Received.Count);
        Assert.Equal(sentByB, wire.A.Received.Count);
        for (int i = 0; i < wire.B.Received.Count; i++)
        {
            Assert.Equal(wire.PacketFrom(wire.A, 80, tag: i), wire.B.Received[i].Packet); // in order, too
        }
        Assert.True(wire.A.Peer.Counters.HandshakesCompleted >= 8);
        foreach (var peer in new[] { wire.A.Peer, wire.B.Peer })
        {
            Assert.Equal(0, peer.Counters.AuthenticationFailures + peer.Counters.ReplayRejections + peer.Counters.NoKeypairRejections + peer.Counters.StagedDropped);
        }
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void A_packet_sealed_with_the_old_keypair_still_opens_after_rotation()
    {
        var wire = new WireHarness(seed: 52);
        wire.Handshake();
        var old = TestPackets.Rent(wire.A.Pool, wire.PacketFrom(wire.A, tag: 1));
        Assert.Equal(SealResult.Sealed, wire.A.Peer.HandleTunPacket(old, wire.Now));
        var inFlight = old.Data.ToArray();
        old.Return();

        wire.AdvanceTo(S(10));
        wire.A.Peer.Connect(wire.Now);
        wire.Pump();
        Assert.Equal(2, wire.B.Peer.Counters.HandshakesCompleted);

        Assert.Equal(OpenResult.Packet, wire.Inject(wire.B, inFlight, wire.A.Endpoint).Open);
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 2)));
        Assert.Equal(2, wire.B.Received.Count);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void A_keepalive_on_the_session_moves_the_peers_endpoint_to_a_new_port_without_a_handshake()
    {
        var wire = new WireHarness(seed: 58);
        wire.Handshake();
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 1))); // A's session is confirmed
        long handshakes = wire.B.Peer.Counters.HandshakesCompleted;
        long keepalives = wire.B.Peer.Counters.KeepalivesReceived;
        // A's socket moved to another port (wg set listen-port): B still has the old endpoint.
        var moved = UdpEndpoint.FromIPv6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 51999);
        wire.A.Endpoint = moved;
        wire.Advance(S(1));
        int wireBefore = wire.Wire.Count;

        Assert.True(wire.A.Peer.SendKeepaliveOnSession(wire.Now));
        wire.Pump();

        var sent = Assert.Single(wire.Wire.Skip(wireBefore));
        Assert.Equal(MessageType.TransportData, (MessageType)sent.Bytes[0]);
        Assert.Equal(32, sent.Bytes.Length); // header and tag: an empty packet
        Assert.Equal(moved, wire.B.Peer.Endpoint);
        Assert.Equal(handshakes, wire.B.Peer.Counters.HandshakesCompleted);
        Assert.Equal(keepalives + 1, wire.B.Peer.Counters.KeepalivesReceived);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Without_a_session_no_keepalive_and_no_handshake_is_sent()
    {
        var wire = new WireHarness(seed: 59);
        Assert.False(wire.A.Peer.SendKeepaliveOnSession(wire.Now)); // never handshaken
        wire.Pump();
        Assert.Empty(wire.Wire);

        wire.Handshake();
        wire.AdvanceTo(ProtocolConstants.RejectAfterTime + S(1)); // the session is too old to send on
        int before = wire.Wire.Count;
        Assert.False(wire.A.Peer.SendKeepaliveOnSession(wire.Now));
        wire.Pump();
        Assert.Equal(before, wire.Wire.Count);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void The_responder_sends_no_data_until_the_initiator_confirms_the_session()
    {
        var wire = new WireHarness(seed: 53);
        // A's confirming keepalive is lost.
        wire.OnWire = (from, datagram) => !(from == wire.A && MessageHeader.Classify(datagram.Data, out _) == MessageType.TransportData);
        wire.Handshake();
        wire.OnWire = null;
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        Assert.False(wire.B.Peer.HasSession(wire.Now));

        var fromB = wire.PacketFrom(wire.B, tag: 1);
        Assert.Equal(SealResult.Queued, wire.SendPacket(wire.B, fromB));
        Assert.Empty(wire.Sent(wire.B, MessageType.TransportData));
        Assert.Empty(wire.Sent(wire.B, MessageType.Initiation)); // it just sent a response: Rekey-Timeout applies

        // A's first data confirms the keypair; B's queued packet follows.
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 2)));
        Assert.True(wire.B.Peer.HasSession(wire.Now));
        Assert.Equal(fromB, Assert.Single(wire.A.Received).Packet);
        Assert.Equal(wire.WallClockAtZero, wire.B.Peer.LastHandshakeUtc);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void The_endpoint_follows_the_latest_authenticated_datagram()
    {
        var wire = new WireHarness(seed: 54);
        wire.Handshake();
        Assert.Equal(wire.A.Endpoint, wire.B.Peer.Endpoint);

        var roamed = UdpEndpoint.FromIPv6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7], 61000);
        wire.A.Endpoint = roamed;
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A));
        Assert.Equal(roamed, wire.B.Peer.Endpoint);
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B));
        Assert.Equal(roamed, wire.Wire[^1].To);
        Assert.Single(wire.A.Received);

        // Garbage from elsewhere does not move it.
        var garbage = new byte[64];
        garbage[0] = 4;
        MessageHeader.Classify(wire.Wire[^2].Bytes, out uint index);
        BinaryPrimitives.WriteUInt32LittleEndian(garbage.AsSpan(4), index);
        BinaryPrimitives.WriteUInt64LittleEndian(garbage.AsSpan(8), 1_000_000);
        Assert.Equal(OpenResult.AuthenticationFailed, wire.Inject(wire.B, garbage, UdpEndpoint.FromIPv4([203, 0, 113, 66], 6)).Open);
        Assert.Equal(roamed, wire.B.Peer.Endpoint);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void What_a_peer_sends_leaves_from_the_local_address_its_datagrams_arrived_at()
    {
        var wire = new WireHarness(seed: 77);
        var second = UdpEndpoint.FromIPv4([192, 0, 2, 99], 0); // A reaches B at B's second address
        wire.B.LocalAddress = second;
        wire.Handshake();
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B));
        var fromB = Enumerable.Range(0, wire.Wire.Count).Where(i => wire.Wire[i].From == wire.B).ToList();
        Assert.True(fromB.Count >= 2); // the response and the data
        Assert.All(fromB, i => Assert.Equal(second, wire.WireSource[i]));
        Assert.All(Enumerable.Range(0, wire.Wire.Count).Where(i => wire.Wire[i].From == wire.A), i => Assert.True(wire.WireSource[i].IsNone));

        // A's datagrams now arrive at another of B's addresses: B follows, as it follows A's endpoint.
        var third = UdpEndpoint.FromIPv6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], 0);
        wire.B.LocalAddress = third;
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A));
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B));
        Assert.Equal(third, wire.WireSource[^1]);
        Assert.Equal(third, wire.B.Peer.LocalAddress); // what a restart carries over (PeerConnection)

        // A request that names B's endpoint for A (wg set ... endpoint) sends from the kernel's choice
        // until A's next datagram.
        wire.B.Peer.Update(wire.B.Peer.Config with { Endpoint = wire.A.Endpoint }, wire.Now, endpointNamed: true);
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B));
        Assert.True(wire.WireSource[^1].IsNone);
        Assert.True(wire.B.Peer.LocalAddress.IsNone);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void A_handshake_retried_for_want_of_an_answer_leaves_from_the_kernels_choice_of_local_address()
    {
        // wireguard-go's expiredNewHandshake and expiredRetransmitHandshake (after the kernel's
        // timers.c) clear the sticky source "in case this is the cause of trouble": an address still
        // on the host but no longer routed to the peer would otherwise hold every retry on a dead path.
        var wire = new WireHarness(seed: 79);
        var second = UdpEndpoint.FromIPv4([192, 0, 2, 99], 0);
        wire.B.LocalAddress = second;
        wire.Handshake();
        Assert.Equal(second, wire.B.Peer.LocalAddress);
        wire.OnWire = (from, _) => from != wire.B; // nothing B sends arrives any more
        wire.AdvanceTo(S(1));
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B));
        Assert.Equal(second, wire.WireSource[^1]); // data still leaves from the address A contacted
        wire.AdvanceTo(S(22)); // new handshake at 16 s (Keepalive-Timeout + Rekey-Timeout), a retry 5 s later
        var initiations = Enumerable.Range(0, wire.Wire.Count)
            .Where(i => wire.Wire[i].From == wire.B && MessageHeader.Classify(wire.Wire[i].Bytes, out _) == MessageType.Initiation).ToList();
        Assert.Equal(2, initiations.Count);
        Assert.All(initiations, i => Assert.True(wire.WireSource[i].IsNone));

        // The path works again: A's response arrives at the second address, and B sends from it again.
        wire.OnWire = null;
        wire.AdvanceTo(S(28));
        Assert.True(wire.B.Peer.HasSession(wire.Now));
        Assert.Equal(second, wire.B.Peer.LocalAddress);
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B));
        Assert.Equal(second, wire.WireSource[^1]);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void A_cookie_reply_leaves_from_the_address_the_initiation_arrived_at()
    {
        var wire = new WireHarness(seed: 78);
        var second = UdpEndpoint.FromIPv4([192, 0, 2, 99], 0);
        wire.B.LocalAddress = second;
        wire.B.UnderLoad = true;
        wire.Handshake();
        int cookie = wire.Wire.FindIndex(w => w.From == wire.B && w.Bytes.Length == MessageHeader.CookieReplySize);
        Assert.True(cookie >= 0);
        Assert.Equal(second, wire.WireSource[cookie]);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Under_load_a_cookie_reply_is_sent_and_the_retransmitted_initiation_carries_mac2()
    {
        var wire = new WireHarness(seed: 55);
        wire.B.UnderLoad = true;
        wire.Handshake();
        Assert.False(wire.A.Peer.HasSession(wire.Now));
        Assert.Equal(1, wire.B.Device.Counters.CookieRepliesSent);
        Assert.Equal(1, wire.A.Peer.Counters.CookiesReceived);
        var cookieReply = wire.Sent(wire.B, MessageType.CookieReply).Single();
        Assert.Equal(MessageHeader.CookieReplySize, cookieReply.Bytes.Length);
        Assert.Equal(wire.A.Endpoint, cookieReply.To);
        var firstInitiation = wire.Sent(wire.A, MessageType.Initiation)[0].Bytes;
        Assert.Equal(firstInitiation.AsSpan(4, 4).ToArray(), cookieReply.Bytes.AsSpan(4, 4).ToArray()); // receiver = initiator's sender index
        Assert.All(firstInitiation[132..], b => Assert.Equal(0, b)); // no cookie yet: mac2 zero

        wire.AdvanceTo(S(6)); // the retransmission now passes mac2
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        Assert.True(wire.B.Peer.HasSession(wire.Now));
        Assert.Equal(1, wire.B.Device.Counters.CookieRepliesSent);

        // Check the cookie with an independent XChaCha20-Poly1305 and mac2 with plain BLAKE2s.
        var cookieKey = ReferenceWireGuard.Hash(Encoding.ASCII.GetBytes("cookie--"), wire.B.Device.PublicKey.ToArray());
        var cipher = new BcXChaCha20Poly1305();
        cipher.Init(false, new AeadParameters(new KeyParameter(cookieKey), 128, cookieReply.Bytes[8..32], firstInitiation[116..132]));
        var cookie = new byte[32];
        int n = cipher.ProcessBytes(cookieReply.Bytes, 32, 32, cookie, 0);
        n += cipher.DoFinal(cookie, n);
        Assert.Equal(16, n);
        var second = wire.Sent(wire.A, MessageType.Initiation)[1].Bytes;
        Assert.Equal(ReferenceWireGuard.Mac(cookie[..16], second[..132]), second[132..]);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void An_initiator_under_load_answers_a_response_with_a_cookie_and_the_next_exchange_succeeds()
    {
        var wire = new WireHarness(seed: 66);
        wire.A.UnderLoad = true;
        wire.Handshake();
        Assert.False(wire.A.Peer.HasSession(wire.Now));
        Assert.Equal(HandshakeAdmission.SendCookie, wire.A.Deliveries.Single(d => d.Type == MessageType.Response).Admission);
        // The cookie reply is addressed to the response's sender index, which already belongs to B's unconfirmed keypair.
        Assert.Equal(1, wire.B.Peer.Counters.CookiesReceived);

        wire.AdvanceTo(S(6)); // A retransmits; B's new response carries mac2
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        Assert.True(wire.B.Peer.HasSession(wire.Now));
        var responses = wire.Sent(wire.B, MessageType.Response);
        Assert.Equal(2, responses.Count);
        Assert.All(responses[0].Bytes[76..], b => Assert.Equal(0, b));
        Assert.Contains(responses[1].Bytes[76..], b => b != 0);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Under_load_a_source_with_a_valid_cookie_still_gets_only_its_share_of_handshakes()
    {
        var wire = new WireHarness(seed: 67);
        wire.B.UnderLoad = true;
        wire.Handshake();
        wire.AdvanceTo(S(6)); // the retransmission carries a valid mac2 and completes
        Assert.True(wire.B.Peer.HasSession(wire.Now));
        var withCookie = wire.Sent(wire.A, MessageType.Initiation)[1].Bytes;

        HandshakeAdmission Admit(TimeSpan at, bool underLoad = true)
        {
            var copy = wire.B.Pool.Rent();
            withCookie.CopyTo(copy.Writable);
            copy.Length = withCookie.Length;
            copy.Endpoint = wire.A.Endpoint;
            var admission = wire.B.Device.AdmitHandshake(copy, underLoad, at, out var cookie);
            Assert.Null(cookie); // a proved source gets no cookie reply, limited or not
            copy.Return();
            return admission;
        }

        // A flood of replays of one valid-mac2 initiation: five at once, then one per 50 ms.
        var at = S(10);
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(HandshakeAdmission.Accept, Admit(at));
        }
        Assert.Equal(HandshakeAdmission.RateLimited, Admit(at));
        Assert.Equal(HandshakeAdmission.RateLimited, Admit(at + TimeSpan.FromMilliseconds(40)));
        Assert.Equal(HandshakeAdmission.Accept, Admit(at + TimeSpan.FromMilliseconds(50)));
        Assert.Equal(2, wire.B.Device.Counters.RateLimited);
        // Not under load, no limit applies.
        Assert.Equal(HandshakeAdmission.Accept, Admit(at, underLoad: false));
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void The_cookie_secret_rotates_after_two_minutes()
    {
        var wire = new WireHarness(seed: 56);
        wire.B.UnderLoad = true;
        wire.Handshake();
        wire.AdvanceTo(S(6));
        Assert.True(wire.A.Peer.HasSession(wire.Now));

        // At 130 s both A's cookie and B's secret are older than two minutes.
        wire.AdvanceTo(S(130));
        wire.A.Peer.Connect(wire.Now);
        wire.Pump();
        wire.AdvanceTo(S(136));
        Assert.Equal(2, wire.B.Device.Counters.CookieRepliesSent);
        Assert.Equal(2, wire.A.Peer.Counters.CookiesReceived);
        Assert.Equal(2, wire.B.Peer.Counters.HandshakesCompleted);

        var replies = wire.Sent(wire.B, MessageType.CookieReply);
        var initiations = wire.Sent(wire.A, MessageType.Initiation);
        byte[] CookieOf(byte[] reply) => OpenCookie(wire.B.Device.PublicKey, reply,
            initiations.Single(i => i.Bytes.AsSpan(4, 4).SequenceEqual(reply.AsSpan(4, 4))).Bytes);
        // Same source address, new secret: a different cookie.
        Assert.NotEqual(CookieOf(replies[0].Bytes), CookieOf(replies[1].Bytes));
        wire.DisposeAndAssertNoLeaks();
    }

    private static byte[] OpenCookie(WireGuardKey responder, byte[] reply, byte[] answeredMessage)
    {
        var cookieKey = ReferenceWireGuard.Hash(Encoding.ASCII.GetBytes("cookie--"), responder.ToArray());
        var cipher = new BcXChaCha20Poly1305();
        int mac1 = answeredMessage.Length - 32;
        cipher.Init(false, new AeadParameters(new KeyParameter(cookieKey), 128, reply[8..32], answeredMessage[mac1..(mac1 + 16)]));
        var cookie = new byte[32];
        int n = cipher.ProcessBytes(reply, 32, 32, cookie, 0);
        n += cipher.DoFinal(cookie, n);
        Assert.Equal(16, n);
        return cookie[..16];
    }

    [Fact]
    public void A_mac2_made_for_another_source_address_earns_another_cookie()
    {
        var wire = new WireHarness(seed: 57);
        wire.B.UnderLoad = true;
        wire.Handshake();
        wire.A.Endpoint = UdpEndpoint.FromIPv4([198, 18, 0, 1], 1234); // A moves before retrying
        wire.AdvanceTo(S(6));
        Assert.Equal(2, wire.B.Device.Counters.CookieRepliesSent);
        Assert.False(wire.A.Peer.HasSession(wire.Now));
        wire.AdvanceTo(S(12));
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void A_cookie_reply_that_does_not_decrypt_is_rejected()
    {
        var wire = new WireHarness(seed: 58);
        wire.B.UnderLoad = true;
        byte[]? captured = null;
        wire.OnWire = (from, datagram) =>
        {
            if (MessageHeader.Classify(datagram.Data, out _) == MessageType.CookieReply)
            {
                captured = datagram.Data.ToArray();
                return false;
            }
            return true;
        };
        wire.Handshake();
        Assert.NotNull(captured);
        captured[40] ^= 1;
        Assert.Equal(HandshakeResult.Rejected, wire.Inject(wire.A, captured, wire.B.Endpoint).Handshake);
        captured[40] ^= 1;
        captured[4] ^= 1; // another receiver index
        Assert.Equal(HandshakeResult.Rejected, wire.Inject(wire.A, captured, wire.B.Endpoint).Handshake);
        Assert.Equal(0, wire.A.Peer.Counters.CookiesReceived);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void The_preshared_key_path_works_and_a_mismatched_key_fails_the_response()
    {
        var psk = WireHarness.RandomKey(new SeededRandomSource(591));
        var wire = new WireHarness(seed: 59, presharedKey: psk);
        wire.Handshake();
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A));
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B));
        Assert.Single(wire.A.Received);
        Assert.Single(wire.B.Received);
        wire.DisposeAndAssertNoLeaks();

        var mismatched = new WireHarness(seed: 60, presharedKey: psk);
        mismatched.B.Peer.Update(mismatched.B.Peer.Config with { PresharedKey = WireHarness.RandomKey(new SeededRandomSource(601)) }, mismatched.Now);
        mismatched.Handshake();
        Assert.False(mismatched.A.Peer.HasSession(mismatched.Now));
        Assert.Equal(1, mismatched.A.Peer.Counters.HandshakeRejections);
        Assert.Equal(HandshakeResult.Rejected, mismatched.A.Deliveries[^1].Handshake);
        mismatched.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void The_staged_queue_is_bounded_and_drops_the_oldest()
    {
        var wire = new WireHarness(seed: 61);
        wire.OnWire = (_, _) => false;
        int total = ProtocolConstants.MaxStagedPackets + 5;
        for (int i = 0; i < total; i++)
        {
            Assert.Equal(SealResult.Queued, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: i)));
        }
        Assert.Equal(ProtocolConstants.MaxStagedPackets, wire.A.Peer.StagedCount);
        Assert.Equal(5, wire.A.Peer.Counters.StagedDropped);
        Assert.Equal(ProtocolConstants.MaxStagedPackets, wire.A.Pool.Outstanding);
        wire.OnWire = null;
        wire.AdvanceTo(S(6));
        Assert.Equal(ProtocolConstants.MaxStagedPackets, wire.B.Received.Count);
        Assert.Equal(wire.PacketFrom(wire.A, tag: 5), wire.B.Received[0].Packet);
        Assert.Equal(wire.PacketFrom(wire.A, tag: total - 1), wire.B.Received[^1].Packet);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Sealing_keeps_the_callers_ecn_and_addresses_the_peer()
    {
        var wire = new WireHarness(seed: 62);
        wire.Handshake();
        foreach (var ecn in new[] { Ecn.NotEct, Ecn.Ect1, Ecn.Ect0, Ecn.Ce })
        {
            var buffer = TestPackets.Rent(wire.A.Pool, wire.PacketFrom(wire.A, 70), ecn);
            Assert.Equal(SealResult.Sealed, wire.A.Peer.HandleTunPacket(buffer, wire.Now));
            Assert.Equal(ecn, buffer.Ecn);
            Assert.Equal(wire.B.Endpoint, buffer.Endpoint);
            Assert.Equal(PacketBuffer.Headroom - MessageHeader.TransportHeaderSize, buffer.Offset);
            wire.Send(wire.A, buffer);
            Assert.Equal(ecn, wire.B.Received[^1].OuterEcn);
        }
        // Handshake messages and keepalives go out Not-ECT.
        Assert.All(wire.Wire.Take(3), w => Assert.Equal(Ecn.NotEct, w.Ecn));
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Packets_that_do_not_fit_are_dropped_and_stay_with_the_caller()
    {
        var wire = new WireHarness(seed: 63);
        // (A peer with no endpoint yet holds its packets: EndpointlessPeerTests.)
        wire.Handshake();
        var tooBig = wire.A.Pool.Rent();
        tooBig.SetData(PacketBuffer.Headroom, tooBig.Capacity - PacketBuffer.Headroom - 8); // no room for padding and tag
        Assert.Equal(SealResult.Dropped, wire.A.Peer.HandleTunPacket(tooBig, wire.Now));
        tooBig.Return();
        var noHeadroom = TestPackets.Rent(wire.A.Pool, wire.PacketFrom(wire.A));
        noHeadroom.SetData(8, noHeadroom.Length);
        Assert.Equal(SealResult.Dropped, wire.A.Peer.HandleTunPacket(noHeadroom, wire.Now));
        noHeadroom.Return();
        var empty = wire.A.Pool.Rent();
        Assert.Equal(SealResult.Dropped, wire.A.Peer.HandleTunPacket(empty, wire.Now));
        empty.Return();
        Assert.Equal(3, wire.A.Peer.Counters.OutboundDropped);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Dispose_returns_queued_buffers_frees_indices_and_stops_everything()
    {
        var wire = new WireHarness(seed: 64);
        wire.OnWire = (_, _) => false;
        for (int i = 0; i < 10; i++)
        {
            var buffer = TestPackets.Rent(wire.A.Pool, wire.PacketFrom(wire.A, tag: i));
            Assert.Equal(SealResult.Queued, wire.A.Peer.HandleTunPacket(buffer, wire.Now)); // not pumped: the initiation waits too
        }
        Assert.Equal(11, wire.A.Pool.Outstanding);
        Assert.Equal(1, wire.A.Device.Indices.Count);
        wire.A.Peer.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.A.Device.Indices.Count);
        Assert.Null(wire.A.Peer.PollTimeout());
        Assert.False(wire.A.Peer.PollTransmit(out _));
        Assert.False(wire.A.Device.AllowedIps.TryLookup(WireHarness.AddressB, out _));
        var late = TestPackets.Rent(wire.A.Pool, wire.PacketFrom(wire.A));
        Assert.Equal(SealResult.Dropped, wire.A.Peer.HandleTunPacket(late, wire.Now));
        late.Return();
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Update_changes_allowed_ips_and_endpoint_without_losing_the_session()
    {
        var wire = new WireHarness(seed: 65);
        wire.Handshake();
        Assert.True(wire.B.Device.AllowedIps.TryLookup(WireHarness.AddressA, out var owner));
        Assert.Equal(wire.A.Device.PublicKey, owner);

        wire.B.Peer.Update(wire.B.Peer.Config with { AllowedIps = [IpPrefix.Parse("10.10.0.0/24")] }, wire.Now);
        Assert.True(wire.B.Device.AllowedIps.TryLookup([10, 10, 0, 77], out _));
        Assert.False(wire.B.Device.AllowedIps.TryLookup([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], out _));
        Assert.True(wire.B.Peer.HasSession(wire.Now));

        var moved = UdpEndpoint.FromIPv4([192, 0, 2, 200], 4000);
        wire.A.Peer.Update(wire.A.Peer.Config with { Endpoint = moved }, wire.Now);
        Assert.Equal(moved, wire.A.Peer.Endpoint);
        Assert.Throws<ArgumentException>(() => wire.A.Peer.Update(wire.A.Peer.Config with { PublicKey = wire.A.Device.PublicKey }, wire.Now));
        wire.DisposeAndAssertNoLeaks();
    }
}
