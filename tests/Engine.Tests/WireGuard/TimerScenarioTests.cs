using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// Whitepaper section 6 as a user sees it: long streams across many rekeys, restarts of either
/// side, long idle spells, no handshake storms (time moves only by hand; nothing sleeps).
/// </summary>
public class TimerScenarioTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    private static void AssertNoRejections(WireHarness wire)
    {
        foreach (var peer in new[] { wire.A.Peer, wire.B.Peer })
        {
            Assert.Equal(0, peer.Counters.AuthenticationFailures);
            Assert.Equal(0, peer.Counters.ReplayRejections);
            Assert.Equal(0, peer.Counters.NoKeypairRejections);
            Assert.Equal(0, peer.Counters.StagedDropped);
        }
    }

    private static void Restart(Node node)
    {
        var config = node.Peer.Config;
        node.Peer.Dispose();
        node.Peer = new Peer(node.Device, config);
        node.Peer.Start(TimeSpan.Zero);
    }

    [Fact]
    public void A_one_way_stream_from_the_responder_survives_ten_minutes_of_rekeys()
    {
        var wire = new WireHarness(seed: 901);
        wire.Handshake();
        int sent = 0;
        for (int t = 1; t <= 600; t++)
        {
            wire.AdvanceTo(S(t));
            wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: t));
            sent++;
        }
        Assert.Equal(sent, wire.A.Received.Count);
        // The initiator rekeys (on its passive keepalives) about every Rekey-After-Time; the responder never on time.
        Assert.InRange(wire.Sent(wire.A, MessageType.Initiation).Count, 5, 7);
        Assert.Empty(wire.Sent(wire.B, MessageType.Initiation));
        AssertNoRejections(wire);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void A_one_way_stream_from_the_initiator_survives_ten_minutes_of_rekeys()
    {
        var wire = new WireHarness(seed: 902);
        wire.Handshake();
        int sent = 0;
        for (int t = 1; t <= 600; t++)
        {
            wire.AdvanceTo(S(t));
            wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: t));
            sent++;
        }
        Assert.Equal(sent, wire.B.Received.Count);
        Assert.InRange(wire.Sent(wire.A, MessageType.Initiation).Count, 5, 7);
        Assert.Empty(wire.Sent(wire.B, MessageType.Initiation));
        // Passive keepalives from B: about one per Keepalive-Timeout, not one per packet.
        var keepalivesFromB = wire.Sent(wire.B, MessageType.TransportData).Count;
        Assert.InRange(keepalivesFromB, 50, 65);
        AssertNoRejections(wire);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Both_directions_at_ten_packets_a_second_for_twenty_minutes_rekey_without_a_storm_or_a_loss()
    {
        var wire = new WireHarness(seed: 903);
        int sentA = 0, sentB = 0;
        for (int tick = 0; tick < 12_000; tick++)
        {
            wire.AdvanceTo(S(tick / 10.0));
            wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: tick));
            sentA++;
            wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: tick));
            sentB++;
        }
        Assert.Equal(sentA, wire.B.Received.Count);
        Assert.Equal(sentB, wire.A.Received.Count);
        Assert.InRange(wire.Sent(wire.A, MessageType.Initiation).Count + wire.Sent(wire.B, MessageType.Initiation).Count, 10, 12);
        AssertNoRejections(wire);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void The_tunnel_recovers_within_twenty_seconds_after_the_responder_restarts()
    {
        var wire = new WireHarness(seed: 904);
        wire.Handshake();
        wire.AdvanceTo(S(30));
        Restart(wire.B);
        for (int t = 31; t <= 80; t++)
        {
            wire.AdvanceTo(S(t));
            wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: t));
        }
        var first = wire.B.ReceivedFrom[0].At;
        Assert.InRange(first, S(31), S(51));
        Assert.True(wire.B.Received.Count >= 30);
        // And the other way, once the session is back.
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.B, wire.PacketFrom(wire.B)));
        Assert.Single(wire.A.Received);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void The_tunnel_recovers_within_twenty_seconds_after_the_initiator_restarts_while_the_other_side_sends()
    {
        var wire = new WireHarness(seed: 905);
        wire.Handshake();
        wire.AdvanceTo(S(30));
        Restart(wire.A);
        for (int t = 31; t <= 80; t++)
        {
            wire.AdvanceTo(S(t));
            wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: t));
        }
        var first = wire.A.ReceivedFrom[0].At;
        Assert.InRange(first, S(31), S(51));
        Assert.True(wire.A.Received.Count >= 30);
        wire.DisposeAndAssertNoLeaks();
    }

    [Theory]
    [InlineData(150)]
    [InlineData(200)]
    [InlineData(600)]
    [InlineData(3600)]
    public void After_a_long_idle_spell_the_first_packet_either_way_gets_through(int idleSeconds)
    {
        var wire = new WireHarness(seed: 906);
        wire.Handshake();
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 1));
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: 1));
        wire.AdvanceTo(S(idleSeconds));
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: 2));
        Assert.Equal(2, wire.A.Received.Count);
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 2));
        Assert.Equal(2, wire.B.Received.Count);
        wire.AdvanceTo(S(idleSeconds + 1));
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 3));
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: 3));
        Assert.Equal(3, wire.A.Received.Count);
        Assert.Equal(3, wire.B.Received.Count);
        wire.DisposeAndAssertNoLeaks();
    }

    [Fact]
    public void Persistent_keepalive_on_both_sides_keeps_an_idle_tunnel_up_without_extra_handshakes()
    {
        var wire = new WireHarness(seed: 907, persistentKeepaliveA: 25, persistentKeepaliveB: 25);
        wire.Handshake();
        wire.AdvanceTo(S(1000));
        int handshakes = wire.Sent(wire.A, MessageType.Initiation).Count + wire.Sent(wire.B, MessageType.Initiation).Count;
        Assert.InRange(handshakes, 7, 10);
        Assert.True(wire.A.Peer.HasSession(wire.Now));
        Assert.True(wire.B.Peer.HasSession(wire.Now));
        var keepalivesA = wire.Sent(wire.A, MessageType.TransportData).Count;
        Assert.InRange(keepalivesA, 1000 / 25, 1000 / 25 + 12);
        AssertNoRejections(wire);
        wire.DisposeAndAssertNoLeaks();
    }
}

/// <summary>Section 6 with a wire that takes time: datagrams arrive <c>delay</c> after they were sent (in order).</summary>
public class DelayedWireTimerTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    private sealed class DelayedWire
    {
        private readonly WireHarness _wire;
        private readonly List<(TimeSpan At, Node To, byte[] Bytes, UdpEndpoint From)> _inFlight = [];

        public DelayedWire(WireHarness wire, Func<Node, TimeSpan> delay)
        {
            _wire = wire;
            wire.OnWire = (from, datagram) =>
            {
                _inFlight.Add((wire.Now + delay(from), wire.Other(from), datagram.Data.ToArray(), from.Endpoint));
                return false;
            };
        }

        public void RunTo(TimeSpan target)
        {
            while (true)
            {
                TimeSpan? delivery = _inFlight.Count > 0 ? _inFlight.Min(x => x.At) : null;
                if (delivery is not { } at || at > target)
                {
                    break;
                }
                _wire.AdvanceTo(at);
                var due = _inFlight.Where(x => x.At <= at).ToList();
                _inFlight.RemoveAll(x => x.At <= at);
                foreach (var d in due)
                {
                    _wire.Inject(d.To, d.Bytes, d.From);
                    _wire.Pump();
                }
            }
            _wire.AdvanceTo(target);
        }
    }

    [Theory]
    [InlineData(0.05, 0.05)]
    [InlineData(0.3, 0.01)]
    [InlineData(0.01, 0.3)]
    public void Both_directions_across_rekeys_on_a_slow_path_lose_nothing(double delayAToB, double delayBToA)
    {
        var wire = new WireHarness(seed: 911);
        var delayed = new DelayedWire(wire, from => from == wire.A ? S(delayAToB) : S(delayBToA));
        int sentA = 0, sentB = 0;
        for (int tick = 0; tick < 20_000; tick++) // 1000 s at 20 packets a second each way
        {
            delayed.RunTo(S(tick / 20.0));
            wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: tick));
            sentA++;
            wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: tick));
            sentB++;
        }
        delayed.RunTo(S(1001));
        Assert.Equal(sentA, wire.B.Received.Count);
        Assert.Equal(sentB, wire.A.Received.Count);
        Assert.InRange(wire.Sent(wire.A, MessageType.Initiation).Count + wire.Sent(wire.B, MessageType.Initiation).Count, 8, 12);
        foreach (var peer in new[] { wire.A.Peer, wire.B.Peer })
        {
            Assert.Equal(0, peer.Counters.AuthenticationFailures + peer.Counters.ReplayRejections + peer.Counters.NoKeypairRejections + peer.Counters.StagedDropped);
        }
        wire.DisposeAndAssertNoLeaks();
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.3)]
    public void On_a_lossy_slow_path_the_tunnel_never_stalls_and_handshakes_stay_few(double loss)
    {
        var wire = new WireHarness(seed: 913);
        var random = new Random(913);
        var delayed = new DelayedWire(wire, _ => S(0.05));
        var inner = wire.OnWire!;
        wire.OnWire = (from, datagram) => random.NextDouble() >= loss ? inner(from, datagram) : false;
        for (int tick = 0; tick < 10_000; tick++) // 1000 s at 10 packets a second each way
        {
            delayed.RunTo(S(tick / 10.0));
            wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: tick));
            wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: tick));
        }
        delayed.RunTo(S(1001));
        foreach (var node in new[] { wire.A, wire.B })
        {
            var at = node.ReceivedFrom.Select(r => r.At).ToList();
            var gaps = at.Zip(at.Skip(1), (x, y) => y - x).Append(at[0]).Append(S(1000) - at[^1]);
            Assert.True(gaps.Max() < S(3), $"{node.Name} heard nothing for {gaps.Max()}");
            Assert.InRange(node.Received.Count, (int)(10_000 * (1 - loss) * 0.97), 10_000);
        }
        int initiations = wire.Sent(wire.A, MessageType.Initiation).Count + wire.Sent(wire.B, MessageType.Initiation).Count;
        Assert.InRange(initiations, 8, 40);
        foreach (var peer in new[] { wire.A.Peer, wire.B.Peer })
        {
            Assert.Equal(0, peer.Counters.AuthenticationFailures + peer.Counters.ReplayRejections);
        }
        wire.DisposeAndAssertNoLeaks();
    }

    [Theory]
    [InlineData(0.05)]
    [InlineData(0.3)]
    public void Only_the_responder_sends_on_a_slow_path_across_rekeys_and_loses_nothing(double delay)
    {
        var wire = new WireHarness(seed: 912);
        var delayed = new DelayedWire(wire, _ => S(delay));
        wire.Handshake();
        delayed.RunTo(S(1));
        int sent = 0;
        for (int tick = 20; tick < 20_000; tick++)
        {
            delayed.RunTo(S(tick / 20.0));
            wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: tick));
            sent++;
        }
        delayed.RunTo(S(1001));
        Assert.Equal(sent, wire.A.Received.Count);
        foreach (var peer in new[] { wire.A.Peer, wire.B.Peer })
        {
            Assert.Equal(0, peer.Counters.AuthenticationFailures + peer.Counters.ReplayRejections + peer.Counters.NoKeypairRejections + peer.Counters.StagedDropped);
        }
        wire.DisposeAndAssertNoLeaks();
    }
}
