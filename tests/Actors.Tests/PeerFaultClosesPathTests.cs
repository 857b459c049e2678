using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// A fault of a peer's engine counts once towards its failure limit: whichever thread's step throws
/// closes the path at once, so no reader steps the half-updated state before the restart replaces
/// it, and a fault reported for a path a restart has already replaced is not counted again.
/// </summary>
public sealed class PeerFaultClosesPathTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private static WireGuardKey NewKey()
    {
        Span<byte> key = stackalloc byte[32];
        RandomNumberGenerator.Fill(key);
        return new WireGuardKey(key);
    }

    private static OutboundPackets BatchOf(PacketBufferPool pool, params byte[][] packets)
    {
        var batch = OutboundPackets.Rent();
        foreach (var packet in packets)
        {
            var buffer = pool.Rent();
            buffer.SetData(PacketBuffer.Headroom, packet.Length);
            packet.CopyTo(buffer.Data);
            batch.Add(buffer);
        }
        return batch;
    }

    /// <summary>A started path of one peer (endpoint 127.0.0.2, allowed 10.0.0.2/32) on an engine that throws for marked packets.</summary>
    private (PacketBufferPool Pool, PeerSlot Slot, Akka.TestKit.TestProbe Connection, DiscardingPeerOutput Output, PeerDataPath Path) StartedPath()
    {
        var pool = new PacketBufferPool(preallocate: 8, maxBuffers: 64);
        var device = new PoisonableDevice(new EngineDevice(new Device(NewKey(), pool, CryptoRandomSource.Instance, DateTime.UtcNow)));
        var remote = new Device(NewKey(), pool, CryptoRandomSource.Instance, DateTime.UtcNow);
        var config = new PeerConfig
        {
            PublicKey = remote.PublicKey,
            Endpoint = UdpEndpoint.FromIPv4([127, 0, 0, 2], 51002),
            AllowedIps = [IpPrefix.Parse("10.0.0.2/32")],
        };
        var slot = new PeerSlot(config);
        var connection = CreateTestProbe();
        var output = new DiscardingPeerOutput();
        var path = new PeerDataPath(device, device.CreatePeer(config), slot, config, connection.Ref, Sys.Log);
        path.Start(TimeSpan.Zero, output, handshake: false);
        return (pool, slot, connection, output, path);
    }

    [Fact]
    public void A_fault_of_the_actors_step_closes_the_path_so_a_reader_thread_does_not_step_it_before_the_restart()
    {
        var (pool, slot, connection, output, path) = StartedPath();
        byte[] Poison(ushort id) => Packets.Ipv4("10.0.0.1", "10.0.0.2", id: id, marker: PoisonableDevice.Marker);

        // The actor steps a batch (a reader handed it on) and the engine throws: supervision gets it.
        Assert.Throws<InvalidOperationException>(() => path.Handle(BatchOf(pool, Poison(1)), TimeSpan.Zero, output));

        // Until the restart's PostStop detaches the path, a reader may still find it in the slot. It
        // must not step it: the batch stays the reader's (it goes to the actor's next instance), and
        // no second fault is reported for this peer.
        var late = BatchOf(pool, Poison(2));
        Assert.False(path.TryHandle(late, TimeSpan.Zero, output));
        Assert.Equal(1, late.Count);
        connection.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        late.ReturnAll();
        late.Recycle();
        path.Close();
        output.Release();
        Assert.Equal(0, pool.Outstanding);
    }

    /// <summary>
    /// Batches already queued for the actor when a reader's fault closed the path go with the faulted
    /// engine state; they were dropped without a trace, and are now counted (status and metrics).
    /// </summary>
    [Fact]
    public void Batches_the_actor_finds_on_a_path_a_reader_fault_closed_are_counted_as_restart_drops()
    {
        var (pool, slot, connection, output, path) = StartedPath();

        // A reader steps a poisoned packet: the path closes and the fault goes to the actor.
        var poisoned = BatchOf(pool, Packets.Ipv4("10.0.0.1", "10.0.0.2", id: 1, marker: PoisonableDevice.Marker));
        Assert.True(path.TryHandle(poisoned, TimeSpan.Zero, output));
        connection.ExpectMsg<PeerPathFaulted>(Wait);

        // Ahead of the fault in the actor's mailbox: a batch of two packets, then one of one.
        path.Handle(BatchOf(pool, Packets.Ipv4("10.0.0.1", "10.0.0.2", id: 2), Packets.Ipv4("10.0.0.1", "10.0.0.2", id: 3)), TimeSpan.Zero, output);
        path.Handle(BatchOf(pool, Packets.Ipv4("10.0.0.1", "10.0.0.2", id: 4)), TimeSpan.Zero, output);
        Assert.Equal(3, PeerStatus.From(slot, []).RestartDrops);
        Assert.Equal(0, PeerStatus.From(slot, []).OutboundDropped);

        path.Close();
        output.Release();
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void A_fault_reported_for_a_path_a_restart_has_replaced_does_not_restart_the_peer_again()
    {
        var (a, b, c) = StartStar();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        Assert.True(Control<TunnelTopology>(a, GetTunnelTopology.Instance).Registry.TryGet(b.PublicKey, out var slotB));
        var replaced = slotB.DataPath;
        Assert.NotNull(replaced);

        // A fault on the reader thread: the path is closed and the peer restarts once.
        AdvanceTime(TimeSpan.FromSeconds(1));
        EventFilter.Warning(contains: $"peer {b.PublicKey.ToBase64()} failed").ExpectOne(Wait,
            () => a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, Ecn.Ect0, id: 1000, marker: PoisonableDevice.Marker)));
        AwaitCondition(() => a.Seam.PeersCreated(b.PublicKey) == 2 && slotB.DataPath is { } now && !ReferenceEquals(now, replaced), Wait);
        Assert.Equal(1, PeerStatusOf(a, b).Restarts);

        // A report about the old path that reaches the new instance (a second reader fault in the
        // gap, say) is not a failure of the new one.
        slotB.Connection.Tell(new PeerPathFaulted(replaced!, ExceptionDispatchInfo.Capture(new InvalidOperationException("late report"))), Akka.Actor.ActorRefs.NoSender);
        Assert.Equal(1, PeerStatusOf(a, b).Restarts); // answered after the report: the mailbox is in order
        Assert.Equal(2, a.Seam.PeersCreated(b.PublicKey));
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2));
        AwaitWritten(b, 2);

        StopAndAssertNoLeaks(a, b, c);
    }
}
