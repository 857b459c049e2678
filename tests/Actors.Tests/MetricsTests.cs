using System.Diagnostics.Metrics;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>The counters are visible to dotnet-counters through the "Firezone.Actors" meter.</summary>
public sealed class MetricsTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public void Peer_counters_are_published_as_observable_instruments_tagged_by_public_key()
    {
        var (a, b) = StartPair();
        Network.RewriteEcn = (data, ecn) => MessageHeader.Classify(data, out _) == MessageType.TransportData && ecn == Ecn.Ect0 ? Ecn.Ce : ecn;
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 1), Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 2));
        AwaitWritten(b, 2);

        var seen = new Dictionary<(string Instrument, string Peer), long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == PeerMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "peer" && tag.Value is string peer)
                {
                    lock (seen)
                    {
                        seen[(instrument.Name, peer)] = value;
                    }
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();

        string aKey = a.PublicKey.ToBase64(), bKey = b.PublicKey.ToBase64();
        Assert.Equal(2, seen[("firezone.peer.packets.sent", bKey)]);
        Assert.Equal(2, seen[("firezone.peer.datagrams.sent.ect0", bKey)]);
        Assert.Equal(2, seen[("firezone.peer.packets.received", aKey)]);
        Assert.Equal(2, seen[("firezone.peer.datagrams.received.ce", aKey)]);
        Assert.Equal(2, seen[("firezone.peer.ecn.ce_propagated", aKey)]);
        Assert.Equal(0, seen[("firezone.peer.restarts", aKey)]);
        Assert.Equal(0, seen[("firezone.peer.datagrams.not_sent", bKey)]);

        // A datagram the socket refuses (no route to B): counted for B.
        Network.Refuse = to => to == b.Endpoint;
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 3));
        AwaitCondition(() =>
        {
            listener.RecordObservableInstruments();
            lock (seen)
            {
                return seen[("firezone.peer.datagrams.not_sent", bKey)] == 1;
            }
        }, Wait);
        // Once more: one pass reads the instruments in turn, and the refusal may have come between
        // its read of sent.ect0 (still counting the datagram) and its read of not_sent.
        listener.RecordObservableInstruments();
        Assert.Equal(2, seen[("firezone.peer.datagrams.sent.ect0", bKey)]); // the refused one did not leave
        Network.Refuse = null;
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void The_devices_own_drops_are_published_too()
    {
        var a = StartNode("a", 1);
        a.Socket.ReceiveTruncated = 3;
        a.Socket.SourcesDropped = 19;
        a.Socket.ReceiveControlTruncated = 23;
        a.Socket.ReceiveErrors = 29;
        a.Tun.ReadDropped = 5;
        var counters = Control<Firezone.Actors.Actors.Tunnel.TunnelTopology>(a, Firezone.Actors.Actors.Tunnel.GetTunnelTopology.Instance).Counters;
        Interlocked.Add(ref counters.HandshakesQueueFull, 7);
        Interlocked.Add(ref counters.HandshakesRejected, 11);
        Interlocked.Add(ref counters.HandshakesUnknownPeer, 13);
        Interlocked.Add(ref counters.CookieRepliesSent, 17);
        var seen = new Dictionary<string, HashSet<long>>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == PeerMetrics.MeterName && instrument.Name.StartsWith("firezone.device.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (seen)
            {
                // Every tunnel of the test run has these instruments (meters of one name), and tests
                // of other classes run in parallel: a flood test's tunnel counts thousands of
                // rejected handshakes at the same time. Keep every value; this tunnel's is among them.
                if (!seen.TryGetValue(instrument.Name, out var values))
                {
                    seen[instrument.Name] = values = [];
                }
                values.Add(value);
            }
        });
        listener.Start();
        AwaitAssert(() =>
        {
            listener.RecordObservableInstruments();
            lock (seen)
            {
                Assert.Contains(3, seen.GetValueOrDefault("firezone.device.datagrams.too_large") ?? []);
                Assert.Contains(19, seen.GetValueOrDefault("firezone.device.datagrams.source_dropped") ?? []);
                Assert.Contains(23, seen.GetValueOrDefault("firezone.device.datagrams.control_truncated") ?? []);
                Assert.Contains(29, seen.GetValueOrDefault("firezone.device.datagrams.receive_errors") ?? []);
                Assert.Contains(5, seen.GetValueOrDefault("firezone.device.tun.read_dropped") ?? []);
                Assert.Contains(7, seen.GetValueOrDefault("firezone.device.handshakes.dropped.queue_full") ?? []);
                Assert.Contains(11, seen.GetValueOrDefault("firezone.device.handshakes.rejected") ?? []);
                Assert.Contains(13, seen.GetValueOrDefault("firezone.device.handshakes.unknown_peer") ?? []);
                Assert.Contains(17, seen.GetValueOrDefault("firezone.device.handshakes.cookie_replies") ?? []);
            }
        }, Wait);
        StopAndAssertNoLeaks(a);
    }
}
