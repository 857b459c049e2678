using Akka.Actor;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// A tunnel rebuilt with the same static key on bigger buffers, as the host rebuilds it for a jumbo
/// MTU (ActorTunnelControl.RebuildAsync): the old tunnel stops reading (StopReading), its peers hand
/// their sessions over as it stops, the new one takes them, gets its peers and reads only when told
/// (StartReading). What arrived meanwhile waits in the device's queue for the new tunnel.
/// </summary>
public sealed class TunnelRebuildTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public void Packets_held_behind_a_handshake_through_the_rebuild_are_sent_and_counted_and_a_packet_from_the_pause_goes_too()
    {
        using var handovers = new PeerHandovers();
        var (a, b) = StartPairHandingOver(handovers);

        // B out of reach: the first tunnel's packets wait behind its handshake.
        Network.Drop = _ => true;
        var held = new byte[3][];
        for (int i = 0; i < held.Length; i++)
        {
            held[i] = Packets.Ipv4(a.Address, b.Address, payloadLength: 40 + i, id: (ushort)(i + 1));
        }
        a.Tun.Inject(held);
        AwaitCondition(() => Network.Count(d => d.Type == MessageType.Initiation) >= 1, Wait);
        AwaitCondition(() => a.Tun.Unread == 0, Wait);
        AwaitPeerTimerArmed(a, b);
        Assert.Equal(0, PeerStatusOf(a, b).TxPackets);

        // The rebuild: reading stops first, so a packet from the pause stays queued.
        Control<ReadingStopped>(a, StopReading.Instance);
        var duringPause = Packets.Ipv4(a.Address, b.Address, payloadLength: 60, id: 9);
        a.Tun.Inject(duringPause);
        Thread.Sleep(100);
        Assert.Equal(1, a.Tun.Unread); // a tunnel told to stop reading reads nothing
        StopHandingOver(a, handovers);

        Network.Drop = null;
        var rebuilt = a.Rebuild(Sys, Clock, TestActor, handovers, "2");
        Control<PeerConfigured>(rebuilt, new AddOrUpdatePeer(rebuilt.PeerConfigFor(b)));
        Thread.Sleep(100);
        Assert.Equal(1, rebuilt.Tun.Unread); // the rebuilt tunnel reads only once told to
        rebuilt.Tunnel.Tell(StartReading.Instance);
        AwaitCondition(() => rebuilt.Tun.Unread == 0, Wait);
        AwaitPeerTimerArmed(rebuilt, b);

        // The handshake in flight was handed over: its retransmission (REKEY_TIMEOUT) completes it
        // on the rebuilt tunnel, which sends what it holds, in order.
        AdvanceTime(ProtocolConstants.RekeyTimeout + TimeSpan.FromSeconds(1));
        AwaitWritten(b, held.Length + 1);
        Assert.Equal([.. held, duringPause], b.Tun.Written);
        var status = PeerStatusOf(rebuilt, b);
        Assert.Equal(held.Length + 1, status.TxPackets);
        Assert.Equal(held.Sum(p => (long)p.Length) + duringPause.Length, status.TxPacketBytes);
        Assert.Equal(status.TxPackets, PeerStatusOf(b, rebuilt).RxPackets);

        StopAndAssertNoLeaks(rebuilt, b);
        AwaitCondition(() => a.Pool.Outstanding == 0, Wait, $"the first tunnel's pool: {a.Pool.Outstanding} buffers still leased");
    }

    /// <summary>
    /// A peer of the rebuilt tunnel whose first start is refused (the engine rejects its
    /// configuration, PeerConnection.PreStart throws) never takes the sessions its predecessor handed
    /// over. Before, they stayed held, their keys alive and the receiver indices the host reserved
    /// for them claimed in the rebuilt device's table, until the next rebuild (found by a review of
    /// the rebuild, 2026-11-27). Now the refused start disposes them.
    /// </summary>
    [Fact]
    public void A_handed_over_peer_whose_first_start_is_refused_disposes_its_sessions_and_frees_their_indices()
    {
        using var handovers = new PeerHandovers();
        var (a, b) = StartPairHandingOver(handovers);
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1); // a session to hand over

        Control<ReadingStopped>(a, StopReading.Instance);
        StopHandingOver(a, handovers);

        var rebuilt = a.Rebuild(Sys, Clock, TestActor, handovers, "2");
        Assert.NotEqual(0, rebuilt.Device.Indices.Count); // reserved for B's session before any peer starts
        rebuilt.Seam.RejectConfigurationOf(b.PublicKey);
        EventFilter.Error(contains: $"peer {b.PublicKey.ToBase64()} stopped: its configuration was rejected").ExpectOne(Wait, () =>
            Control<PeerConfigured>(rebuilt, new AddOrUpdatePeer(rebuilt.PeerConfigFor(b))));

        Assert.Equal(0, handovers.Count); // was: 1 until the next rebuild
        Assert.Equal(0, rebuilt.Device.Indices.Count); // was: B's session's index stayed claimed
        rebuilt.Tunnel.Tell(StartReading.Instance);
        StopAndAssertNoLeaks(rebuilt, b);
        AwaitCondition(() => a.Pool.Outstanding == 0, Wait, $"the first tunnel's pool: {a.Pool.Outstanding} buffers still leased");
    }

    /// <summary>A, whose peers hand their sessions over to <paramref name="handovers"/> when it stops, and B, its peer.</summary>
    private (TunnelNode A, TunnelNode B) StartPairHandingOver(PeerHandovers handovers)
    {
        var a = TunnelNode.Start(Sys, Network, Clock, "a", 1, TestActor, handOverTo: handovers);
        var b = StartNode("b", 2);
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        return (a, b);
    }

    /// <summary>Stops A's tunnel as the host does in a rebuild; its one peer's sessions are handed over.</summary>
    private void StopHandingOver(TunnelNode a, PeerHandovers handovers)
    {
        handovers.Collect();
        var watcher = CreateTestProbe();
        watcher.Watch(a.Tunnel);
        Sys.Stop(a.Tunnel);
        watcher.ExpectTerminated(a.Tunnel, Wait);
        Assert.Equal(1, handovers.Count);
    }
}
