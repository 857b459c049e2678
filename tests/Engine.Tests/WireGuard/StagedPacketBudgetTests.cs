using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>
/// The packets a device's peers hold while they wait for sessions take at most a quarter of its pool
/// (<see cref="StagedPacketBudget"/>), so that peers nobody answers cannot leave the readers without
/// buffers; every way a packet leaves a queue gives its place back.
/// </summary>
public class StagedPacketBudgetTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    private static Peer NewPeer(Device device, int index)
    {
        Span<byte> key = stackalloc byte[32];
        CryptoRandomSource.Instance.Fill(key);
        return new Peer(device, new PeerConfig
        {
            PublicKey = new WireGuardKey(key),
            Endpoint = UdpEndpoint.FromIPv4([192, 0, 2, (byte)index], 51820),
            AllowedIps = [IpPrefix.Parse($"10.1.{index}.0/24")],
        });
    }

    private static PacketBuffer Packet(PacketBufferPool pool, int tag) =>
        TestPackets.Rent(pool, TestPackets.Ipv4([10, 0, 0, 1], [10, 1, 0, 1], 60, tag: tag), Ecn.NotEct);

    private static int Initiations(Peer peer)
    {
        int count = 0;
        while (peer.PollTransmit(out var datagram))
        {
            if (MessageHeader.Classify(datagram.Data, out _) == MessageType.Initiation)
            {
                count++;
            }
            datagram.Return();
        }
        return count;
    }

    [Fact]
    public void The_budget_is_a_quarter_of_the_pool_and_at_least_one_full_queue()
    {
        Assert.Equal(4096, StagedPacketBudget.ForPool(16384).Limit);
        Assert.Equal(ProtocolConstants.MaxStagedPackets, StagedPacketBudget.ForPool(100).Limit);
    }

    [Fact]
    public void Past_the_budget_a_peer_holds_a_new_packet_in_place_of_its_oldest_and_one_holding_none_drops_it_but_still_handshakes()
    {
        var pool = new PacketBufferPool(preallocate: 0, maxBuffers: 600); // budget 150
        using var device = new Device(WireHarness.RandomKey(CryptoRandomSource.Instance), pool, CryptoRandomSource.Instance, DateTime.UnixEpoch);
        Assert.Equal(150, device.StagedBudget.Limit);
        using var first = NewPeer(device, 1);
        using var second = NewPeer(device, 2);
        using var third = NewPeer(device, 3);
        var now = S(1);

        for (int i = 0; i < ProtocolConstants.MaxStagedPackets; i++)
        {
            Assert.Equal(SealResult.Queued, first.HandleTunPacket(Packet(pool, i), now));
        }
        for (int i = 0; i < 22; i++)
        {
            Assert.Equal(SealResult.Queued, second.HandleTunPacket(Packet(pool, i), now));
        }
        Assert.Equal(150, device.StagedBudget.Held);
        Assert.Equal(1, Initiations(first));
        Assert.Equal(1, Initiations(second));

        // The second peer goes on holding its newest 22.
        Assert.Equal(SealResult.Queued, second.HandleTunPacket(Packet(pool, 22), now));
        Assert.Equal(22, second.StagedCount);
        Assert.Equal(1, second.Counters.StagedDropped);
        Assert.Equal(150, device.StagedBudget.Held);

        // The third holds nothing to make room with: dropped (the caller returns it), the handshake starts.
        var dropped = Packet(pool, 0);
        Assert.Equal(SealResult.Dropped, third.HandleTunPacket(dropped, now));
        dropped.Return();
        Assert.Equal(0, third.StagedCount);
        Assert.Equal(1, Initiations(third));
        Assert.Equal(150, device.StagedBudget.Held);
        Assert.Equal(150, pool.Outstanding);

        first.Dispose();
        Assert.Equal(22, device.StagedBudget.Held);
        Assert.Equal(SealResult.Queued, third.HandleTunPacket(Packet(pool, 1), now));
        Assert.Equal(23, device.StagedBudget.Held);
    }

    [Fact]
    public void Packets_sent_on_the_session_dropped_at_give_up_or_handed_over_give_their_places_back()
    {
        var wire = new WireHarness(seed: 71);
        wire.OnWire = (_, _) => false;
        for (int i = 0; i < 10; i++)
        {
            Assert.Equal(SealResult.Queued, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: i)));
        }
        Assert.Equal(10, wire.A.Device.StagedBudget.Held);
        wire.OnWire = null;
        wire.Advance(S(6)); // the retransmitted initiation completes the handshake
        Assert.Equal(10, wire.B.Received.Count);
        Assert.Equal(0, wire.A.Device.StagedBudget.Held);

        // No answer for REKEY_ATTEMPT_TIME: the handshake gives up and flushes what it held.
        wire.OnWire = (_, _) => false;
        wire.Advance(ProtocolConstants.RejectAfterTime * 3);
        for (int i = 0; i < 5; i++)
        {
            wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: i));
        }
        Assert.Equal(5, wire.A.Device.StagedBudget.Held);
        wire.Advance(ProtocolConstants.RekeyAttemptTime + S(30)); // 18 retries 5 s apart, each up to 1/3 s later (jitter)
        Assert.Equal(0, wire.A.Peer.StagedCount);
        Assert.Equal(0, wire.A.Device.StagedBudget.Held);

        // Handed over to a rebuilt device: the old device's places are free, the new one's taken.
        for (int i = 0; i < 3; i++)
        {
            wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: i));
        }
        var oldDevice = wire.A.Device;
        Assert.Equal(3, oldDevice.StagedBudget.Held);
        var handover = wire.A.Peer.HandOver()!;
        Assert.Equal(0, oldDevice.StagedBudget.Held);
        var config = wire.A.Peer.Config;
        wire.A.Peer.Dispose();
        wire.A.ReplaceDevice(wire.PrivateA, new SeededRandomSource(72));
        wire.A.Peer = new Peer(wire.A.Device, config);
        Assert.True(wire.A.Peer.TakeOver(handover, wire.Now));
        Assert.Equal(3, wire.A.Device.StagedBudget.Held);
        wire.A.Peer.Dispose();
        Assert.Equal(0, wire.A.Device.StagedBudget.Held);
        wire.Dispose();
    }
}
