using System.Security.Cryptography;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// A peer's path notes the inner length of each packet the engine holds for a handshake, to count
/// it as sent when it comes out sealed. What it notes stays within what the engine holds
/// (<see cref="ProtocolConstants.MaxStagedPackets"/>), also while the peer never answers and the
/// engine drops its oldest held packets for newer ones.
/// </summary>
public sealed class StagedLengthsTests(ITestOutputHelper output) : ActorTestBase(output)
{
    /// <summary>
    /// Traffic to a peer that never answers (a Client gone while a server behind the Gateway goes
    /// on sending to it): the engine holds the newest 128 packets and returns the others, but the
    /// path kept a length for every buffer that was ever held, until nothing was held any more,
    /// which never happens while the traffic goes on (every new packet starts a handshake again).
    /// Found by the churn review: 50 such peers in a lab, 60 s of UDP to each, held about 8,400
    /// lengths each (10 MB of dictionary capacity, which a later Clear keeps).
    /// </summary>
    [Fact]
    public void Lengths_noted_for_packets_held_for_an_unanswering_peer_stay_within_what_the_engine_holds()
    {
        const int Packets = 4000, PerBatch = 100;
        var pool = new PacketBufferPool(preallocate: 0, maxBuffers: Packets + 64);
        var device = new EngineDevice(new Device(NewKey(), pool, CryptoRandomSource.Instance, DateTime.UtcNow));
        var remote = new Device(NewKey(), pool, CryptoRandomSource.Instance, DateTime.UtcNow);
        var config = new PeerConfig
        {
            PublicKey = remote.PublicKey,
            Endpoint = UdpEndpoint.FromIPv4([127, 0, 0, 2], 51002),
            AllowedIps = [IpPrefix.Parse("10.0.0.2/32")],
        };
        var slot = new PeerSlot(config);
        var connection = CreateTestProbe();
        var sink = new DiscardingPeerOutput();
        var path = new PeerDataPath(device, device.CreatePeer(config), slot, config, connection.Ref, Sys.Log);
        path.Start(TimeSpan.Zero, sink, handshake: false);

        // Every packet in a buffer of its own, as with many peers' traffic interleaved in the pool
        // (a buffer the engine returns is not the next one rented).
        var buffers = new Queue<PacketBuffer>();
        for (int i = 0; i < Packets; i++)
        {
            buffers.Enqueue(pool.Rent());
        }
        var now = TimeSpan.Zero;
        for (int sent = 0; sent < Packets; sent += PerBatch)
        {
            var batch = OutboundPackets.Rent();
            for (int i = 0; i < PerBatch; i++)
            {
                var packet = Fakes.Packets.Ipv4("10.0.0.1", "10.0.0.2", id: (ushort)(sent + i));
                var buffer = buffers.Dequeue();
                buffer.SetData(PacketBuffer.Headroom, packet.Length);
                packet.CopyTo(buffer.Data);
                batch.Add(buffer);
            }
            path.Handle(batch, now, sink);
            sink.Flush(); // as the actor does after every message
            now += TimeSpan.FromMilliseconds(100);
        }

        Assert.Equal(ProtocolConstants.MaxStagedPackets, pool.Outstanding); // the engine holds the newest, the rest went back
        Assert.InRange(path.StagedLengthsHeld, 1, 2 * ProtocolConstants.MaxStagedPackets);

        path.Close();
        sink.Release();
        Assert.Equal(0, pool.Outstanding);
    }

    private static WireGuardKey NewKey()
    {
        Span<byte> key = stackalloc byte[32];
        RandomNumberGenerator.Fill(key);
        return new WireGuardKey(key);
    }
}
