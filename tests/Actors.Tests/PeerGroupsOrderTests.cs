using System.Buffers.Binary;
using System.Security.Cryptography;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Io;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tun;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// A read with more than a batch of one peer's packets: when the reader steps the first batch itself
/// and the second has to go to the peer's actor (its lock busy for over a moment), the first
/// batch's results leave before the actor gets the second, so the flow is not reordered.
/// </summary>
public sealed class PeerGroupsOrderTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(10);

    [Fact]
    public void A_later_batch_told_to_the_actor_waits_for_the_earlier_batch_this_reader_stepped()
    {
        var pool = new PacketBufferPool(preallocate: 32, maxBuffers: 1024);
        var device = new EngineDevice(new Device(NewKey(), pool, CryptoRandomSource.Instance, DateTime.UtcNow));
        var (actorA, actorB) = (CreateTestProbe(), CreateTestProbe());
        var slotA = Slot(actorA);
        var slotB = Slot(actorB);
        using var holding = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();

        // A's actor path is stepping A (a timer, say) and is descheduled: it holds A's lock.
        var peerA = new ScriptedPeer(slotA.Key) { OnTimeout = () => { holding.Set(); release.Wait(Long); } };
        var pathA = new PeerDataPath(device, peerA, slotA, slotA.Config, actorA.Ref, Sys.Log);
        Thread? holder = null;
        var peerB = new ScriptedPeer(slotB.Key)
        {
            // That starts while this reader steps B, after it stepped A's first batch.
            OnSeal = () =>
            {
                if (holder is null)
                {
                    holder = new Thread(() => pathA.HandleTimeout(TimeSpan.Zero, new DiscardingPeerOutput())) { IsBackground = true };
                    holder.Start();
                    Assert.True(holding.Wait(Long));
                }
            },
        };
        var pathB = new PeerDataPath(device, peerB, slotB, slotB.Config, actorB.Ref, Sys.Log);
        slotA.Attach(pathA);
        slotB.Attach(pathB);

        var sent = new RecordingOutput(actorA);
        var groups = new PeerGroups<OutboundPackets>(OutboundPackets.Rent, sent);
        // One TUN read: one packet of B (first, so its group is stepped before A's last one), then
        // a batch and 10 packets of A.
        groups.Add(slotB, Packet(pool, 10_000));
        int total = OutboundPackets.Capacity + 10;
        for (int i = 0; i < total; i++)
        {
            groups.Add(slotA, Packet(pool, i));
        }
        groups.Flush(TimeSpan.Zero);

        // A's first batch was sealed here; the second went to A's actor (the lock was busy).
        var told = actorA.ExpectMsg<OutboundPackets>(Long);
        Assert.Equal(Enumerable.Range(OutboundPackets.Capacity, 10), IdsOf(told));
        var sentOfA = sent.Sent.Where(s => s.Id < 10_000).ToList();
        Assert.Equal(Enumerable.Range(0, OutboundPackets.Capacity), sentOfA.Select(s => s.Id));
        // The point: every one of them was sent before the actor had the later batch.
        Assert.DoesNotContain(sentOfA, s => s.ActorHadLaterBatch);

        release.Set();
        Assert.True(holder!.Join(Long));
        slotA.ExitBacklog(told.BacklogPackets);
        told.ReturnAll();
        told.Recycle();
        pathA.Close();
        pathB.Close();
        groups.Release();
        Assert.Equal(0, pool.Outstanding);
    }

    private static WireGuardKey NewKey()
    {
        Span<byte> key = stackalloc byte[32];
        RandomNumberGenerator.Fill(key);
        return new WireGuardKey(key);
    }

    private static PeerSlot Slot(Akka.TestKit.TestProbe connection) =>
        new(new PeerConfig { PublicKey = NewKey() }) { Connection = connection.Ref };

    /// <summary>An IPv4 packet whose identification field carries <paramref name="id"/>.</summary>
    private static PacketBuffer Packet(PacketBufferPool pool, int id)
    {
        byte[] packet = Packets.Ipv4("10.0.0.1", "10.0.0.2", id: (ushort)id);
        var buffer = pool.Rent();
        buffer.SetData(PacketBuffer.Headroom, packet.Length);
        packet.CopyTo(buffer.Data);
        return buffer;
    }

    private static int IdOf(PacketBuffer buffer) => BinaryPrimitives.ReadUInt16BigEndian(buffer.Data[4..]);

    private static List<int> IdsOf(OutboundPackets batch)
    {
        var ids = new List<int>();
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch[i] is { } buffer)
            {
                ids.Add(IdOf(buffer));
            }
        }
        return ids;
    }

    /// <summary>Records what is sent, and whether A's actor had been told a batch by then.</summary>
    private sealed class RecordingOutput(Akka.TestKit.TestProbe actorA) : PeerOutput
    {
        public List<(int Id, bool ActorHadLaterBatch)> Sent { get; } = [];

        protected override void Send(SendDatagrams batch)
        {
            bool told = actorA.HasMessages;
            for (int i = 0; i < batch.Count; i++)
            {
                if (batch[i] is { } datagram)
                {
                    Sent.Add((IdOf(datagram), told));
                }
            }
            batch.Recycle();
        }

        protected override void Write(WritePackets batch) => batch.Recycle();
    }

    /// <summary>An engine peer that "seals" by leaving the packet as it is (its id stays readable).</summary>
    private sealed class ScriptedPeer(WireGuardKey key) : IWireGuardPeer
    {
        public Action? OnSeal { get; init; }
        public Action? OnTimeout { get; init; }
        public WireGuardKey PublicKey => key;
        public UdpEndpoint Endpoint => UdpEndpoint.FromIPv4([127, 0, 0, 2], 51820);
        public UdpEndpoint LocalAddress => default;
        public DateTime? LastHandshakeUtc => null;
        public long RxBytes => 0;
        public long TxBytes => 0;
        public void AttachReplayState(HandshakeReplayState state) { }
        public void RestoreEndpoint(UdpEndpoint endpoint, UdpEndpoint localAddress) { }
        public void Update(PeerConfig config, TimeSpan now, bool endpointNamed) { }

        public SealResult HandleTunPacket(PacketBuffer packet, TimeSpan now)
        {
            OnSeal?.Invoke();
            return SealResult.Sealed;
        }

        public OpenResult HandleTransportData(PacketBuffer datagram, TimeSpan now) => OpenResult.Packet;
        public HandshakeResult HandleHandshakeMessage(PacketBuffer datagram, TimeSpan now) => HandshakeResult.Unexpected;
        public void Start(TimeSpan now) { }
        public void Connect(TimeSpan now) { }
        public bool SendKeepaliveOnSession(TimeSpan now) => false;
        public void HandleTimeout(TimeSpan now) => OnTimeout?.Invoke();
        public TimeSpan? PollTimeout() => null;

        public bool PollTransmit(out PacketBuffer datagram)
        {
            datagram = null!;
            return false;
        }

        public int StagedCount => 0;
        public void Dispose() { }
    }
}
