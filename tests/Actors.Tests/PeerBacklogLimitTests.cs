using System.Reflection;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tunnel;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// A peer's actor path holds at most <see cref="PeerSlot.MaxBacklogPackets"/> packets (wireguard-go's
/// per-peer queue bound): a slow peer's excess is dropped and counted, so it cannot take the shared
/// buffer pool from the other peers.
/// </summary>
public sealed class PeerBacklogLimitTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public void A_stuck_peer_drops_beyond_its_backlog_limit_and_the_other_peers_traffic_still_flows()
    {
        var (a, b, c) = StartStar();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1), Packets.Ipv4(a.Address, c.Address, id: 1));
        AwaitWritten(b, 1);
        AwaitWritten(c, 1);
        c.Tun.Inject(Packets.Ipv4(c.Address, a.Address, id: 1));
        AwaitWritten(a, 1);
        var topology = Control<TunnelTopology>(a, GetTunnelTopology.Instance);
        Assert.True(topology.Registry.TryGet(b.PublicKey, out var slotB));
        AwaitCondition(() => !slotB.HasBacklog, Wait);

        // B's path lock held by another thread (as by a descheduled holder): B's actor path stops draining.
        var gate = (Lock)typeof(PeerDataPath).GetField("_gate", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(slotB.DataPath)!;
        using var release = new ManualResetEventSlim();
        using var held = new ManualResetEventSlim();
        var holder = new Thread(() =>
        {
            gate.Enter();
            held.Set();
            release.Wait();
            gate.Exit();
        }) { IsBackground = true };
        holder.Start();
        held.Wait();

        const int bulk = 5000;
        long drops = 0;
        try
        {
            for (int i = 0; i < bulk; i += 50)
            {
                var chunk = new byte[50][];
                for (int j = 0; j < chunk.Length; j++)
                {
                    chunk[j] = Packets.Ipv4(a.Address, b.Address, payloadLength: 1200, id: (ushort)(100 + i + j));
                }
                a.Tun.Inject(chunk);
            }
            AwaitCondition(() => !a.Tun.HasPendingPackets, Wait);
            // (Read from the slot: a status query waits for B's stuck actor.)
            AwaitCondition(() => (drops = PeerCounters.Read(ref slotB.Counters.QueueFullDrops)) >= bulk - PeerSlot.MaxBacklogPackets, Wait,
                "B's packets beyond its backlog limit to be dropped and counted");
            Assert.InRange(slotB.BacklogPackets, 1, PeerSlot.MaxBacklogPackets);
            Assert.InRange(a.Pool.Outstanding, 1, 2 * PeerSlot.MaxBacklogPackets);

            // C, a healthy peer, sends to A over the socket, and A sends to C through the same TUN device.
            for (int k = 0; k < 10; k++)
            {
                var burst = new byte[60][];
                for (int j = 0; j < burst.Length; j++)
                {
                    burst[j] = Packets.Ipv4(c.Address, a.Address, id: (ushort)(2 + k * 60 + j));
                }
                c.Tun.Inject(burst);
            }
            AwaitWritten(a, 601);
            int atC = c.Tun.WrittenCount;
            a.Tun.Inject(Packets.Ipv4(a.Address, c.Address, id: 5000));
            AwaitWritten(c, atC + 1);
            Assert.Equal(0, topology.Counters.PoolExhaustedCount);
        }
        finally
        {
            // Also when an assertion above fails: the holder must not keep B's lock for the rest of the run.
            release.Set();
        }

        // B recovers: what its actor path held goes out in order, then new traffic flows again.
        holder.Join();
        AwaitCondition(() => !slotB.HasBacklog, Wait);
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 9000));
        AwaitCondition(() => b.Tun.Written.Any(p => Packets.IdOf(p) == 9000), Wait, "B's traffic to flow again after the stall");
        var ids = b.Tun.Written.Select(p => (int)Packets.IdOf(p)).ToArray();
        Assert.Equal(1 + bulk - (int)drops + 1, ids.Length);
        Assert.Equal(ids.Order(), ids); // kept what it queued in order; only the excess was dropped
        Assert.Equal(drops, PeerStatusOf(a, b).QueueFullDrops);
        StopAndAssertNoLeaks(a, b, c);
    }
}
