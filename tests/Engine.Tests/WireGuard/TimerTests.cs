using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>Time-travel tests of whitepaper section 6 (time moves only by hand; nothing sleeps).</summary>
public class TimerTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void Initiator_rekeys_when_sending_after_rekey_after_time()
    {
        var wire = new WireHarness(seed: 11);
        wire.Handshake();
        wire.AdvanceTo(S(100));
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 1)));
        Assert.Single(wire.Sent(wire.A, MessageType.Initiation)); // 100 s: still fresh

        wire.AdvanceTo(S(121));
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 2)));
        var initiations = wire.Sent(wire.A, MessageType.Initiation);
        Assert.Equal(2, initiations.Count);
        Assert.Equal(S(121), initiations[1].At);
        Assert.Equal(2, wire.A.Peer.Counters.HandshakesCompleted);
        Assert.Equal(2, wire.B.Peer.Counters.HandshakesCompleted);
        Assert.Equal(2, wire.B.Received.Count);

        // Later packets go out under the new keypair (B's new receiver index).
        var before = wire.Wire.Count;
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 3)));
        MessageHeader.Classify(wire.Wire[before].Bytes, out uint newIndex);
        MessageHeader.Classify(wire.Sent(wire.A, MessageType.TransportData)[0].Bytes, out uint oldIndex);
        Assert.NotEqual(oldIndex, newIndex);
        Assert.Equal(3, wire.B.Received.Count);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Initiator_rekeys_on_receive_shortly_before_reject_after_time()
    {
        var wire = new WireHarness(seed: 12);
        wire.Handshake();
        // B (responder) sends at 166 s; A's keypair is 166 s old > 180 - 10 - 5.
        wire.AdvanceTo(S(166));
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.B, wire.PacketFrom(wire.B)));
        var initiations = wire.Sent(wire.A, MessageType.Initiation);
        Assert.Equal(2, initiations.Count);
        Assert.Equal(S(166), initiations[1].At);
        Assert.Single(wire.A.Received);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Keypairs_expire_after_reject_after_time_for_receiving_and_sending()
    {
        var wire = new WireHarness(seed: 13);
        wire.Handshake();
        wire.AdvanceTo(S(179));
        // B is the responder, so sending at 179 s does not rekey by itself (section 6.2).
        var held = TestPackets.Rent(wire.B.Pool, wire.PacketFrom(wire.B, tag: 1));
        Assert.Equal(SealResult.Sealed, wire.B.Peer.HandleTunPacket(held, wire.Now));
        var sealedBytes = held.Data.ToArray();
        held.Return();

        wire.AdvanceTo(S(180));
        Assert.Equal(OpenResult.NoKeypair, wire.Inject(wire.A, sealedBytes, wire.B.Endpoint).Open);
        Assert.Equal(1, wire.A.Peer.Counters.NoKeypairRejections);
        Assert.False(wire.A.Peer.HasSession(wire.Now));
        Assert.False(wire.B.Peer.HasSession(wire.Now));

        // Sending now needs a fresh handshake: the packet is queued and flushed after it.
        var packet = wire.PacketFrom(wire.A, tag: 2);
        Assert.Equal(SealResult.Queued, wire.SendPacket(wire.A, packet));
        Assert.Equal(S(180), wire.Sent(wire.A, MessageType.Initiation)[^1].At);
        Assert.Equal(packet, Assert.Single(wire.B.Received).Packet);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Crossing_initiations_settle_on_one_session_after_a_retransmission()
    {
        var wire = new WireHarness(seed: 22, bKnowsEndpointOfA: true);
        wire.A.Peer.Connect(wire.Now);
        wire.B.Peer.Connect(wire.Now);
        wire.Pump();
        wire.AdvanceTo(S(6));
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        Assert.True(wire.B.Peer.HasSession(wire.Now));
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A)));
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.B, wire.PacketFrom(wire.B)));
        Assert.Single(wire.A.Received);
        Assert.Single(wire.B.Received);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void All_keys_are_zeroed_after_three_times_reject_after_time_without_a_new_session()
    {
        var wire = new WireHarness(seed: 14);
        wire.Handshake();
        Assert.Equal(1, wire.A.Device.Indices.Count);
        Assert.Equal(1, wire.B.Device.Indices.Count);
        Assert.Equal(S(540), wire.A.Peer.PollTimeout());

        wire.AdvanceTo(S(539));
        Assert.Equal(1, wire.A.Device.Indices.Count);
        wire.AdvanceTo(S(540));
        Assert.Equal(0, wire.A.Device.Indices.Count);
        Assert.Equal(0, wire.B.Device.Indices.Count);
        Assert.Null(wire.A.Peer.PollTimeout());
        Assert.Null(wire.B.Peer.PollTimeout());
        wire.DisposeAndAssertNoLeaks();
    }

    /// <summary>
    /// A Gateway's side of a Client that handshook once, sent a packet, got the reply and vanished
    /// (the churn of a long-running Gateway): the Gateway's retries (section 6.2's new handshake 15 s
    /// after its reply went unanswered, then Rekey-Timeout retransmissions) give up, and 540 s after
    /// the session everything the session and the retries took is freed: indices, keys, timers.
    /// </summary>
    [Fact]
    public void A_responder_whose_initiator_vanished_after_one_exchange_frees_every_index_and_timer_on_time()
    {
        var wire = new WireHarness(seed: 18);
        Assert.Equal(SealResult.Queued, wire.SendPacket(wire.A, wire.PacketFrom(wire.A)));
        Assert.Single(wire.B.Received);
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.B, wire.PacketFrom(wire.B)));
        wire.OnWire = (_, _) => false; // A is gone: nothing reaches anyone any more

        wire.AdvanceTo(S(200));
        Assert.Equal(1, wire.B.Peer.Counters.HandshakeGiveUps);
        Assert.Equal(ProtocolConstants.MaxTimerHandshakes + 2, wire.Sent(wire.B, MessageType.Initiation).Count);
        wire.AdvanceTo(S(539));
        Assert.Equal(2, wire.B.Device.Indices.Count); // the session's and the last retry's
        wire.AdvanceTo(S(540));
        Assert.Equal(0, wire.B.Device.Indices.Count);
        Assert.Null(wire.B.Peer.PollTimeout());
        Assert.False(wire.B.Peer.HasSession(wire.Now));
        Assert.Equal(0, wire.B.Pool.Outstanding);
        wire.DisposeAndAssertNoLeaks();
    }

    /// <summary>
    /// A Client whose initiation was answered but that never confirmed the session (it vanished
    /// before its first data): the Gateway's unconfirmed keypair and its index go 540 s after the
    /// response, and it sends nothing meanwhile (a responder never initiates for a session it has not used).
    /// </summary>
    [Fact]
    public void An_unconfirmed_responder_session_is_freed_on_time_without_a_packet_sent()
    {
        var wire = new WireHarness(seed: 19);
        wire.OnWire = (from, _) => !ReferenceEquals(from, wire.B); // B's response is lost; A then vanishes
        wire.A.Peer.Connect(wire.Now);
        wire.Pump();
        Assert.Single(wire.Sent(wire.B, MessageType.Response));
        wire.OnWire = (_, _) => false;
        Assert.Equal(1, wire.B.Device.Indices.Count);
        Assert.False(wire.B.Peer.HasSession(wire.Now));

        wire.AdvanceTo(S(539));
        Assert.Equal(1, wire.B.Device.Indices.Count);
        wire.AdvanceTo(S(540));
        Assert.Equal(0, wire.B.Device.Indices.Count);
        Assert.Null(wire.B.Peer.PollTimeout());
        Assert.Single(wire.Sent(wire.B, MessageType.Response));
        Assert.Empty(wire.Sent(wire.B, MessageType.Initiation));
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Handshake_is_retransmitted_with_jitter_until_rekey_attempt_time_then_given_up()
    {
        var wire = new WireHarness(seed: 15);
        wire.OnWire = (_, _) => false; // B is unreachable
        Assert.Equal(SealResult.Queued, wire.SendPacket(wire.A, wire.PacketFrom(wire.A)));
        wire.AdvanceTo(S(300));

        var initiations = wire.Sent(wire.A, MessageType.Initiation);
        // wireguard-go and the kernel: the first attempt plus MaxTimerHandshakes + 1 retries.
        Assert.Equal(ProtocolConstants.MaxTimerHandshakes + 2, initiations.Count);
        var intervals = new HashSet<TimeSpan>();
        for (int i = 1; i < initiations.Count; i++)
        {
            var interval = initiations[i].At - initiations[i - 1].At;
            Assert.InRange(interval, S(5), S(5.333));
            intervals.Add(interval);
        }
        Assert.True(intervals.Count > 3, "retransmissions carry random jitter");
        Assert.InRange(initiations[^1].At, ProtocolConstants.RekeyAttemptTime, ProtocolConstants.RekeyAttemptTime + S(2 * 5.334));
        // Each retransmission is a fresh initiation (new ephemeral key and index).
        Assert.Equal(initiations.Count, initiations.Select(i => Convert.ToHexString(i.Bytes)).Distinct().Count());

        Assert.Equal(1, wire.A.Peer.Counters.HandshakeGiveUps);
        Assert.Equal(0, wire.A.Peer.StagedCount);
        Assert.Equal(1, wire.A.Peer.Counters.StagedDropped);
        // After giving up only the key-zeroing timer remains.
        Assert.NotNull(wire.A.Peer.PollTimeout());
        wire.AdvanceTo(S(2000));
        Assert.Null(wire.A.Peer.PollTimeout());
        Assert.Equal(ProtocolConstants.MaxTimerHandshakes + 2, wire.Sent(wire.A, MessageType.Initiation).Count);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void A_lost_response_is_recovered_by_retransmission()
    {
        var wire = new WireHarness(seed: 16);
        int responses = 0;
        wire.OnWire = (from, datagram) => MessageHeader.Classify(datagram.Data, out _) != MessageType.Response || ++responses > 1;
        wire.Handshake();
        Assert.False(wire.A.Peer.HasSession(wire.Now));
        wire.AdvanceTo(S(6));
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        Assert.True(wire.B.Peer.HasSession(wire.Now));
        Assert.Equal(2, wire.Sent(wire.A, MessageType.Initiation).Count);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Keepalive_is_sent_keepalive_timeout_after_data_received_when_nothing_was_sent()
    {
        var wire = new WireHarness(seed: 17);
        wire.Handshake();
        wire.AdvanceTo(S(1));
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A));
        wire.AdvanceTo(S(30));
        var fromB = wire.Sent(wire.B, MessageType.TransportData);
        var keepalive = Assert.Single(fromB);
        Assert.Equal(MessageHeader.TransportMinSize, keepalive.Bytes.Length);
        Assert.Equal(S(11), keepalive.At);
        Assert.Equal(1, wire.B.Peer.Counters.KeepalivesSent);
        Assert.Equal(1, wire.A.Peer.Counters.KeepalivesReceived);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void No_keepalive_when_data_went_back_in_time()
    {
        var wire = new WireHarness(seed: 18);
        wire.Handshake();
        wire.AdvanceTo(S(1));
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A));
        wire.AdvanceTo(S(5));
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B));
        wire.AdvanceTo(S(10.9));
        Assert.Single(wire.Sent(wire.B, MessageType.TransportData)); // only the data
        // A received data at 5 s and sent nothing since: its keepalive follows at 15 s.
        wire.AdvanceTo(S(16));
        var fromA = wire.Sent(wire.A, MessageType.TransportData);
        Assert.Equal(S(15), fromA[^1].At);
        Assert.Equal(MessageHeader.TransportMinSize, fromA[^1].Bytes.Length);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void New_handshake_when_data_sent_and_nothing_heard_for_keepalive_plus_rekey_timeout()
    {
        var wire = new WireHarness(seed: 19);
        wire.Handshake();
        // From now on B's transport messages are lost (its keepalives would otherwise answer).
        wire.OnWire = (from, datagram) => from != wire.B || MessageHeader.Classify(datagram.Data, out _) != MessageType.TransportData;
        wire.AdvanceTo(S(1));
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A));
        wire.AdvanceTo(S(17));
        var initiations = wire.Sent(wire.A, MessageType.Initiation);
        Assert.Equal(2, initiations.Count);
        Assert.InRange(initiations[1].At, S(16), S(16.334));
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Persistent_keepalive_is_sent_every_interval_of_silence()
    {
        var wire = new WireHarness(seed: 20, persistentKeepaliveA: 25);
        wire.Handshake();
        wire.AdvanceTo(S(60));
        var keepalives = wire.Sent(wire.A, MessageType.TransportData);
        Assert.Equal([S(0), S(25), S(50)], keepalives.Select(k => k.At));
        Assert.All(keepalives, k => Assert.Equal(MessageHeader.TransportMinSize, k.Bytes.Length));
        Assert.Equal(S(75), wire.A.Peer.PollTimeout());
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Persistent_keepalive_brings_a_session_up_by_itself()
    {
        var wire = new WireHarness(seed: 21, persistentKeepaliveB: 25, bKnowsEndpointOfA: true);
        // Going live with persistent keepalive sends one at once, which needs a session first.
        wire.A.Peer.Start(wire.Now); // A has no persistent keepalive: nothing happens
        wire.Pump();
        Assert.Empty(wire.Wire);
        wire.B.Peer.Start(wire.Now);
        wire.Pump();
        Assert.True(wire.B.Peer.HasSession(wire.Now));
        Assert.Single(wire.Sent(wire.B, MessageType.Initiation));
        Assert.Single(wire.Sent(wire.B, MessageType.TransportData)); // the staged keepalive
        Assert.Equal(1, wire.A.Peer.Counters.KeepalivesReceived);

        // Turning it off and on again through Update also sends one right away (wireguard-go's UAPI).
        wire.AdvanceTo(S(3));
        wire.B.Peer.Update(wire.B.Peer.Config with { PersistentKeepaliveSeconds = 0 }, wire.Now);
        wire.B.Peer.Update(wire.B.Peer.Config with { PersistentKeepaliveSeconds = 25 }, wire.Now);
        wire.Pump();
        Assert.Equal(S(3), wire.Sent(wire.B, MessageType.TransportData)[^1].At);
        wire.DisposeAndAssertNoLeaks();
    }
}
