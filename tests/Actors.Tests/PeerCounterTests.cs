using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// packets.sent and bytes.sent count a packet when its datagram is produced (sealed at once, or
/// sealed out of the engine's staged queue after the handshake), never a packet the engine drops.
/// </summary>
public sealed class PeerCounterTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public void Packets_staged_for_an_unreachable_peer_are_not_counted_as_sent()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        Network.Drop = _ => true; // B unreachable: the handshake never completes
        for (int i = 0; i < 5; i++)
        {
            var batch = new byte[60][];
            for (int j = 0; j < batch.Length; j++)
            {
                batch[j] = Packets.Ipv4(a.Address, b.Address, id: (ushort)(i * 60 + j));
            }
            a.Tun.Inject(batch);
        }
        AwaitCondition(() => Network.Count(d => d.Type == MessageType.Initiation) >= 1, Wait);
        AwaitCondition(() => !a.Tun.HasPendingPackets, Wait);
        Thread.Sleep(200);

        var status = PeerStatusOf(a, b);
        Assert.Equal(0, Network.Count(d => d.Type == MessageType.TransportData));
        Assert.Equal(0, status.TxPackets);
        Assert.Equal(0, status.TxPacketBytes);
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void Packets_staged_behind_the_handshake_count_once_each_when_sent()
    {
        var (a, b) = StartPair();
        var staged = new byte[5][];
        for (int i = 0; i < staged.Length; i++)
        {
            staged[i] = Packets.Ipv4(a.Address, b.Address, payloadLength: 40 + i * 7, id: (ushort)(i + 1));
        }
        a.Tun.Inject(staged);
        AwaitWritten(b, staged.Length);
        var afterHandshake = PeerStatusOf(a, b);
        Assert.Equal(staged.Length, afterHandshake.TxPackets);
        Assert.Equal(staged.Sum(p => (long)p.Length), afterHandshake.TxPacketBytes);

        // With the session up packets are sealed at once: each counted once more, nothing twice.
        var direct = new byte[3][];
        for (int i = 0; i < direct.Length; i++)
        {
            direct[i] = Packets.Ipv4(a.Address, b.Address, payloadLength: 100 + i, id: (ushort)(10 + i));
        }
        a.Tun.Inject(direct);
        AwaitWritten(b, staged.Length + direct.Length);
        var after = PeerStatusOf(a, b);
        Assert.Equal(staged.Length + direct.Length, after.TxPackets);
        Assert.Equal(staged.Sum(p => (long)p.Length) + direct.Sum(p => (long)p.Length), after.TxPacketBytes);
        Assert.Equal(after.TxPackets, PeerStatusOf(b, a).RxPackets);
        StopAndAssertNoLeaks(a, b);
    }
}
