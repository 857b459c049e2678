using System.Security.Cryptography;
using Akka.Actor;
using Firezone.Actors.Actors.Io;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Tun;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// A read's packets grouped by peer: a read larger than one batch (SocketIO reads up to 256
/// datagrams, a batch holds 128) hands a peer's packets on in several batches, in arrival order,
/// and every peer's in its own batches.
/// </summary>
public sealed class PeerGroupsTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private readonly PacketBufferPool _pool = new(preallocate: 32, maxBuffers: 1024);

    private static PeerSlot Slot(IActorRef connection)
    {
        Span<byte> key = stackalloc byte[32];
        RandomNumberGenerator.Fill(key);
        // No data path: the groups are told to the connection, here a probe.
        return new PeerSlot(new PeerConfig { PublicKey = new WireGuardKey(key) }) { Connection = connection };
    }

    private PacketBuffer Numbered(int number) => NumberedBuffers.Rent(_pool, number);

    private static List<int> NumbersOf(InboundDatagrams batch) => NumberedBuffers.Drain(batch);

    [Fact]
    public void A_peer_with_more_packets_than_a_batch_holds_gets_them_in_several_batches_in_order()
    {
        var (busy, quiet) = (CreateTestProbe(), CreateTestProbe());
        var (busySlot, quietSlot) = (Slot(busy.Ref), Slot(quiet.Ref));
        var groups = new PeerGroups<InboundDatagrams>(InboundDatagrams.Rent, new DiscardingPeerOutput());
        int total = 2 * InboundDatagrams.Capacity + 44;
        for (int i = 0; i < total; i++)
        {
            groups.Add(busySlot, Numbered(i));
            if (i % 50 == 0)
            {
                groups.Add(quietSlot, Numbered(10_000 + i));
            }
        }
        groups.Flush(TimeSpan.Zero);

        var busyNumbers = new List<int>();
        var sizes = new List<int>();
        while (busyNumbers.Count < total)
        {
            var batch = busy.ExpectMsg<InboundDatagrams>(Wait);
            sizes.Add(batch.Count);
            busyNumbers.AddRange(NumbersOf(batch));
        }
        Assert.Equal([InboundDatagrams.Capacity, InboundDatagrams.Capacity, 44], sizes);
        Assert.Equal(Enumerable.Range(0, total), busyNumbers);
        Assert.Equal(Enumerable.Range(0, total).Where(i => i % 50 == 0).Select(i => 10_000 + i), NumbersOf(quiet.ExpectMsg<InboundDatagrams>(Wait)));
        busy.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        quiet.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        Assert.Equal(0, _pool.Outstanding);
    }

    [Fact]
    public void Release_returns_full_and_open_groups_to_the_pool()
    {
        var busySlot = Slot(CreateTestProbe().Ref);
        var groups = new PeerGroups<InboundDatagrams>(InboundDatagrams.Rent, new DiscardingPeerOutput());
        for (int i = 0; i < InboundDatagrams.Capacity + 3; i++)
        {
            groups.Add(busySlot, Numbered(i));
        }
        groups.Release();
        Assert.Equal(0, _pool.Outstanding);
    }
}
