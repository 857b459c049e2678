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
        using var read = new BusyPeerRead(this, actorA => new RecordingOutput(actorA));
        read.Groups.Flush(TimeSpan.Zero);

        // A's first batch was sealed here; the second went to A's actor (the lock was busy).
        var told = read.ActorA.ExpectMsg<OutboundPackets>(Long);
        Assert.Equal(Enumerable.Range(OutboundPackets.Capacity, 10), IdsOf(told));
        var sentOfA = ((RecordingOutput)read.Output).Sent.Where(s => s.Id < 10_000).ToList();
        Assert.Equal(Enumerable.Range(0, OutboundPackets.Capacity), sentOfA.Select(s => s.Id));
        // The point: every one of them was sent before the actor had the later batch.
        Assert.DoesNotContain(sentOfA, s => s.ActorHadLaterBatch);

        read.SlotA.ExitBacklog(told.BacklogPackets);
        told.ReturnAll();
        told.Recycle();
    }

    /// <summary>
    /// The socket fails in that early flush: the later batch, already out of the groups and not yet
    /// told, goes back to the pool, not nowhere (found by a review of the fix above).
    /// </summary>
    [Fact]
    public void A_later_batch_whose_early_flush_fails_goes_back_to_the_pool()
    {
        using var read = new BusyPeerRead(this, _ => new FailingOutput());
        Assert.Throws<Native.UdpSocketException>(() => read.Groups.Flush(TimeSpan.Zero));
        read.ActorA.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    /// <summary>
    /// One TUN read of a batch and 10 packets for peer A and one packet for peer B, grouped. While
    /// the reader steps B (after A's first batch), another thread takes A's lock and holds it (A's
    /// actor stepping a timer, descheduled), so A's later batch goes to A's actor. Dispose lets the
    /// holder go, closes the paths, releases the groups and checks every buffer came back.
    /// </summary>
    private sealed class BusyPeerRead : IDisposable
    {
        private readonly PacketBufferPool _pool = new(preallocate: 32, maxBuffers: 1024);
        private readonly ManualResetEventSlim _holding = new();
        private readonly ManualResetEventSlim _release = new();
        private readonly PeerDataPath _pathA, _pathB;
        private Thread? _holder;

        public BusyPeerRead(PeerGroupsOrderTests test, Func<Akka.TestKit.TestProbe, PeerOutput> output)
        {
            var device = new EngineDevice(new Device(NewKey(), _pool, CryptoRandomSource.Instance, DateTime.UtcNow));
            ActorA = test.CreateTestProbe();
            var actorB = test.CreateTestProbe();
            SlotA = Slot(ActorA);
            var slotB = Slot(actorB);
            var peerA = new ScriptedPeer(SlotA.Key) { OnTimeout = () => { _holding.Set(); _release.Wait(Long); } };
            _pathA = new PeerDataPath(device, peerA, SlotA, SlotA.Config, ActorA.Ref, test.Sys.Log);
            var peerB = new ScriptedPeer(slotB.Key)
            {
                OnSeal = () =>
                {
                    if (_holder is null)
                    {
                        _holder = new Thread(() => _pathA.HandleTimeout(TimeSpan.Zero, new DiscardingPeerOutput())) { IsBackground = true };
                        _holder.Start();
                        Assert.True(_holding.Wait(Long));
                    }
                },
            };
            _pathB = new PeerDataPath(device, peerB, slotB, slotB.Config, actorB.Ref, test.Sys.Log);
            SlotA.Attach(_pathA);
            slotB.Attach(_pathB);
            Output = output(ActorA);
            Groups = new PeerGroups<OutboundPackets>(OutboundPackets.Rent, Output);
            // B first, so its group is stepped before A's last one.
            Groups.Add(slotB, Packet(_pool, 10_000));
            for (int i = 0; i < OutboundPackets.Capacity + 10; i++)
            {
                Groups.Add(SlotA, Packet(_pool, i));
            }
        }

        public Akka.TestKit.TestProbe ActorA { get; }
        public PeerSlot SlotA { get; }
        public PeerOutput Output { get; }
        public PeerGroups<OutboundPackets> Groups { get; }

        public void Dispose()
        {
            _release.Set();
            Assert.True(_holder is null || _holder.Join(Long));
            _pathA.Close();
            _pathB.Close();
            Groups.Release();
            Assert.Equal(0, _pool.Outstanding);
            _holding.Dispose();
            _release.Dispose();
        }
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

    /// <summary>A socket that has gone: every send fails (after taking its batch, as DirectPeerOutput does).</summary>
    private sealed class FailingOutput : PeerOutput
    {
        protected override void Send(SendDatagrams batch)
        {
            batch.Discard();
            throw new Native.UdpSocketException("the socket is gone (test)");
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
        public bool IsStaged(PacketBuffer packet) => false;
        public long HandshakeGiveUps => 0;
        public void Dispose() { }
    }
}
