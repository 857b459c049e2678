using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// Packets held for a handshake (whitepaper section 6: at most <see cref="ProtocolConstants.MaxStagedPackets"/>
/// per peer, as wireguard-go's staged queue) come from the device's one packet buffer pool, which the
/// readers and every other peer need too.
/// </summary>
public sealed class StagingPoolShareTests
{
    /// <summary>
    /// Traffic to many peers that never answer (Clients gone while servers behind the Gateway go on
    /// sending to them): each held its full 128 packets, and 128 such peers took a 16,384-buffer
    /// pool, so no packet of any peer could be read any more until they gave up (found by the churn
    /// review: 300 such peers in a namespace lab, all 16,384 buffers held, a live Client's pings all
    /// lost; the same defect was found and fixed first as <see cref="StagedPacketBudget"/>). Past the
    /// budget (a quarter of the pool) a peer's staged queue does not grow: a new packet replaces its oldest.
    /// </summary>
    [Fact]
    public void Peers_that_never_answer_do_not_take_more_than_half_the_pool_with_staged_packets()
    {
        const int Peers = 16;
        var random = new SeededRandomSource(31);
        var pool = new PacketBufferPool(preallocate: 0, maxBuffers: 1024);
        using var device = new Device(WireHarness.RandomKey(random), pool, random, DateTime.UtcNow);
        var peers = new List<Peer>();
        for (int i = 0; i < Peers; i++)
        {
            peers.Add(new Peer(device, new PeerConfig
            {
                PublicKey = WireHarness.RandomKey(random), // any 32 bytes: no handshake completes
                Endpoint = UdpEndpoint.FromIPv4([192, 0, 2, (byte)(i + 1)], 51820),
                AllowedIps = [IpPrefix.Parse($"10.9.0.{i + 1}/32")],
            }));
        }

        int refused = 0;
        for (int n = 0; n < ProtocolConstants.MaxStagedPackets; n++)
        {
            for (int i = 0; i < Peers; i++)
            {
                if (!pool.TryRent(out var buffer))
                {
                    refused++; // a reader would find the pool empty: every peer's traffic stops
                    continue;
                }
                var packet = TestPackets.Ipv4([10, 9, 0, 100], [10, 9, 0, (byte)(i + 1)], 100, tag: n);
                buffer.SetData(PacketBuffer.Headroom, packet.Length);
                packet.CopyTo(buffer.Data);
                var result = peers[i].HandleTunPacket(buffer, TimeSpan.FromMilliseconds(n));
                Assert.Equal(SealResult.Queued, result);
            }
        }

        Assert.Equal(0, refused);
        // Within half the pool (the budget is a quarter), plus one staged packet and one initiation per peer.
        Assert.InRange(pool.Outstanding, 1, pool.MaxBuffers / 2 + 2 * Peers);
        Assert.All(peers, p => Assert.InRange(p.StagedCount, 1, ProtocolConstants.MaxStagedPackets));

        foreach (var peer in peers)
        {
            while (peer.PollTransmit(out var datagram))
            {
                datagram.Return();
            }
            peer.Dispose();
        }
        Assert.Equal(0, pool.Outstanding);
    }
}
