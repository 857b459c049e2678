using System.Buffers.Binary;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.TestKit;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tun;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>TunReader, TunWriter and SocketIO alone, with probes standing in for the PeerConnections.</summary>
public sealed class IoActorTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private readonly PacketBufferPool _pool = new(preallocate: 32, maxBuffers: 1024);
    private readonly PeerRegistry _registry = new();
    private readonly TunnelCounters _counters = new();

    private Device NewDevice()
    {
        Span<byte> key = stackalloc byte[32];
        RandomNumberGenerator.Fill(key);
        return new Device(new WireGuardKey(key), _pool, CryptoRandomSource.Instance, DateTime.UtcNow);
    }

    /// <summary>A registered peer whose connection is a probe and that has no data path, so the readers tell it their batches.</summary>
    private static PeerSlot Slot(WireGuardKey key, IActorRef connection) =>
        new(new PeerConfig { PublicKey = key }) { Connection = connection };

    private static WireGuardKey RandomKey()
    {
        Span<byte> key = stackalloc byte[32];
        RandomNumberGenerator.Fill(key);
        return new WireGuardKey(key);
    }

    private void StopAndAssertNoLeaks(IActorRef actor)
    {
        var probe = CreateTestProbe();
        probe.Watch(actor);
        Sys.Stop(actor);
        probe.ExpectTerminated(actor, Wait);
        AwaitCondition(() => _pool.Outstanding == 0, Wait, $"{_pool.Outstanding} buffers still leased");
    }

    [Fact]
    public void TunReader_sends_each_peer_one_batch_per_read_and_drops_what_has_no_route()
    {
        var device = NewDevice();
        var (k1, k2) = (RandomKey(), RandomKey());
        var (p1, p2) = (CreateTestProbe(), CreateTestProbe());
        device.AllowedIps.Insert(IpPrefix.Parse("10.1.0.0/16"), k1);
        device.AllowedIps.Insert(IpPrefix.Parse("fd00:2::/64"), k2);
        _registry.Set(k1, Slot(k1, p1.Ref));
        _registry.Set(k2, Slot(k2, p2.Ref));
        var tun = new FakeTun();
        var reader = Sys.ActorOf(TunReader.Props(tun, new FakeNetwork().CreateSocket(UdpEndpoint.FromIPv4([127, 0, 0, 1], 51820)), new EngineDevice(device), _registry, _counters, new ManualClock(TimeSpan.Zero)));
        tun.Inject(
            Packets.Ipv4("10.0.0.1", "10.1.0.5", id: 1),
            Packets.Ipv6("fd00:1::1", "fd00:2::9"),
            Packets.Ipv4("10.0.0.1", "10.1.200.1", id: 2),
            Packets.Ipv4("10.0.0.1", "10.3.0.1", id: 3), // no route
            Packets.Ipv4("10.0.0.1", "224.0.0.251", id: 4), // no route, multicast (mDNS)
            Packets.Ipv4("10.0.0.1", "255.255.255.255", id: 5), // no route, broadcast
            Packets.Ipv6("fe80::1", "ff02::2"), // no route, multicast (a router solicitation)
            [0x45, 0x00], // truncated IPv4
            [0x00]); // not IP
        // One batch of both for the first peer; or, when the reader had waited 1 ms or more before
        // they came (its first read after idle takes one packet, as below), id 1 alone, then id 2.
        var first = p1.ExpectMsg<OutboundPackets>(Wait);
        Assert.Equal(PacketBuffer.Headroom, first[0]!.Offset); // room for the transport header
        var firstIds = Enumerable.Range(0, first.Count).Select(k => Packets.IdOf(first[k]!.Data.ToArray())).ToList();
        first.Recycle();
        if (firstIds.Count == 1)
        {
            var next = p1.ExpectMsg<OutboundPackets>(Wait);
            firstIds.AddRange(Enumerable.Range(0, next.Count).Select(k => Packets.IdOf(next[k]!.Data.ToArray())));
            next.Recycle();
        }
        Assert.Equal([1, 2], firstIds);
        var second = p2.ExpectMsg<OutboundPackets>(Wait);
        Assert.Equal(1, second.Count);
        second.Recycle();
        AwaitCondition(() => _counters.TunPacketsNoRouteCount == 1 && _counters.TunPacketsNoRouteMulticastCount == 3 && _counters.TunPacketsInvalidCount == 2, Wait);

        // More than one read's worth: 100 packets arrive as reads of 64 and 36, in order. When the
        // reader had waited 1 ms or more before they came (this thread was slow to inject them: a
        // clean-clone CI run, 2026-11-28), its first read after idle takes one packet (README "A
        // read after idle takes one packet"), and the rest come as 64 and 35.
        var many = new byte[100][];
        for (int i = 0; i < many.Length; i++)
        {
            many[i] = Packets.Ipv4("10.0.0.1", "10.1.0.5", id: (ushort)i);
        }
        tun.Inject(many);
        var counts = new List<int>();
        var ids = new List<int>();
        while (ids.Count < many.Length)
        {
            var batch = p1.ExpectMsg<OutboundPackets>(Wait);
            counts.Add(batch.Count);
            for (int k = 0; k < batch.Count; k++)
            {
                ids.Add(Packets.IdOf(batch[k]!.Data.ToArray()));
            }
            batch.Recycle();
        }
        int[] afterIdle = counts.Count == 3 ? [1] : [];
        Assert.Equal([.. afterIdle, TunReader.ReadBatchSize, many.Length - afterIdle.Length - TunReader.ReadBatchSize], counts);
        Assert.Equal(Enumerable.Range(0, many.Length), ids);
        p2.ExpectNoMsg(TimeSpan.FromMilliseconds(100));

        StopAndAssertNoLeaks(reader);
    }

    [Fact]
    public void TunWriter_writes_a_batch_and_returns_its_buffers()
    {
        var tun = new FakeTun();
        var writer = Sys.ActorOf(TunWriter.Props(tun, _counters));
        var batch = WritePackets.Rent();
        for (ushort i = 1; i <= 3; i++)
        {
            var buffer = _pool.Rent();
            var packet = Packets.Ipv4("10.0.0.2", "10.0.0.1", id: i);
            packet.CopyTo(buffer.Writable);
            buffer.Length = packet.Length;
            batch.Add(buffer);
        }
        writer.Tell(batch);
        AwaitCondition(() => tun.WrittenCount == 3, Wait);
        Assert.Equal([(ushort)1, (ushort)2, (ushort)3], tun.Written.Select(Packets.IdOf));
        AwaitCondition(() => _pool.Outstanding == 0, Wait);
        StopAndAssertNoLeaks(writer);
    }

    private static byte[] TransportDatagram(uint receiver, int payload = 16)
    {
        var bytes = new byte[MessageHeader.TransportMinSize + payload];
        bytes[0] = (byte)MessageType.TransportData;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), receiver);
        return bytes;
    }

    [Fact]
    public void SocketIO_routes_by_receiver_index_sends_initiations_to_the_handshake_owner_and_drops_the_rest()
    {
        var device = NewDevice();
        var (k1, k2) = (RandomKey(), RandomKey());
        var (p1, p2, owner) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe());
        uint i1 = device.Indices.Allocate(k1, CryptoRandomSource.Instance);
        uint i2 = device.Indices.Allocate(k2, CryptoRandomSource.Instance);
        _registry.Set(k1, Slot(k1, p1.Ref));
        _registry.Set(k2, Slot(k2, p2.Ref));
        var socket = Network.CreateSocket(UdpEndpoint.FromIPv4([127, 0, 0, 1], 51820));
        var io = Sys.ActorOf(SocketIO.Props(socket, new FakeTun(), new EngineDevice(device), _registry, owner.Ref, _counters, new ManualClock(TimeSpan.Zero)));
        var from = UdpEndpoint.FromIPv4([192, 0, 2, 7], 40000);

        var initiation = new byte[MessageHeader.InitiationSize];
        initiation[0] = (byte)MessageType.Initiation;
        var unknown = TransportDatagram(i1 ^ i2 ^ 0x5A5A5A5A);
        // Delivered while the receive thread may be blocked: it picks them up as one or more batches.
        socket.Deliver(TransportDatagram(i1), from, Ecn.Ce);
        socket.Deliver(TransportDatagram(i2), from, Ecn.Ect0);
        socket.Deliver(TransportDatagram(i1, payload: 32), from, Ecn.NotEct);
        socket.Deliver(initiation, from, Ecn.NotEct);
        socket.Deliver(unknown, from, Ecn.NotEct);
        socket.Deliver([9, 0, 0, 0, 1, 2], from, Ecn.NotEct);

        var toP1 = new List<PacketBuffer>();
        while (toP1.Count < 2)
        {
            var batch = p1.ExpectMsg<InboundDatagrams>(Wait);
            for (int i = 0; i < batch.Count; i++)
            {
                toP1.Add(batch.Take(i)!);
            }
            batch.Recycle();
        }
        Assert.Equal([Ecn.Ce, Ecn.NotEct], toP1.Select(d => d.Ecn));
        Assert.All(toP1, d => Assert.Equal(from, d.Endpoint));
        Assert.Equal([48, 64], toP1.Select(d => d.Length));
        toP1.ForEach(d => d.Return());
        var toP2 = p2.ExpectMsg<InboundDatagrams>(Wait);
        Assert.Equal(Ecn.Ect0, toP2[0]!.Ecn);
        toP2.Recycle();
        var handshakes = owner.ExpectMsg<InboundHandshakes>(Wait);
        Assert.Equal(MessageHeader.InitiationSize, handshakes[0]!.Length);
        handshakes.Recycle();
        AwaitCondition(() => _counters.DatagramsUnknownReceiverCount == 1 && _counters.DatagramsInvalidCount == 1, Wait);

        StopAndAssertNoLeaks(io);
    }

    /// <summary>A SocketIO whose handshake owner is a probe, and a WireGuard initiation (only its type set) to deliver.</summary>
    private (FakeUdpSocket Socket, IActorRef Io, TestProbe Owner, UdpEndpoint From, byte[] Initiation) StartSocketIOWithHandshakeProbe()
    {
        var device = NewDevice();
        var owner = CreateTestProbe();
        var socket = Network.CreateSocket(UdpEndpoint.FromIPv4([127, 0, 0, 1], 51820));
        var io = Sys.ActorOf(SocketIO.Props(socket, new FakeTun(), new EngineDevice(device), _registry, owner.Ref, _counters, new ManualClock(TimeSpan.Zero)));
        var initiation = new byte[MessageHeader.InitiationSize];
        initiation[0] = (byte)MessageType.Initiation;
        return (socket, io, owner, UdpEndpoint.FromIPv4([192, 0, 2, 7], 40000), initiation);
    }

    [Fact]
    public void SocketIO_hands_on_more_initiations_than_a_batch_holds_from_one_read()
    {
        // A read takes up to 256 datagrams, a batch holds 128: a flood of initiations (from a
        // handshake storm or an attacker) must go on in several batches, not fail the reader.
        var (socket, io, owner, from, initiation) = StartSocketIOWithHandshakeProbe();
        const int Count = 201;
        socket.WakeOnArrival = false; // queued unseen, so that one read finds them all
        for (int i = 0; i < Count - 1; i++)
        {
            socket.Deliver(initiation, from, Ecn.NotEct);
        }
        socket.WakeOnArrival = true;
        socket.Deliver(initiation, from, Ecn.NotEct);

        int received = 0;
        while (received < Count)
        {
            var batch = owner.ExpectMsg<InboundHandshakes>(Wait);
            Assert.InRange(batch.Count, 1, InboundHandshakes.Capacity);
            received += batch.Count;
            batch.Recycle();
        }
        Assert.Equal(Count, received);
        owner.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        StopAndAssertNoLeaks(io);
    }

    [Fact]
    public void SocketIO_drops_initiations_beyond_the_handshake_queue_and_counts_them()
    {
        // The handshake owner (here a probe) takes none up, as a PeerSupervisor behind a flood of
        // initiations with a valid mac1: they must not queue without bound, each holding a pooled
        // buffer the data path needs (wireguard-go drops when its handshake queue is full).
        var (socket, io, owner, from, initiation) = StartSocketIOWithHandshakeProbe();
        int total = SocketIO.MaxQueuedHandshakes + 100;
        for (int i = 0; i < total; i++)
        {
            socket.Deliver(initiation, from, Ecn.NotEct);
        }

        // Their buffers go back here, but the owner never takes them up: the queue stays full.
        int received = 0;
        while (received < SocketIO.MaxQueuedHandshakes)
        {
            var batch = owner.ExpectMsg<InboundHandshakes>(Wait);
            received += batch.Count;
            batch.Recycle();
        }
        AwaitCondition(() => _counters.HandshakesQueueFullCount == 100, Wait);
        owner.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Assert.Equal(SocketIO.MaxQueuedHandshakes, received);

        // Once the owner has taken them up, initiations go on again.
        Interlocked.Add(ref _counters.HandshakesQueued, -received);
        socket.Deliver(initiation, from, Ecn.NotEct);
        var after = owner.ExpectMsg<InboundHandshakes>(Wait);
        Assert.Equal(1, after.Count);
        after.Recycle();
        StopAndAssertNoLeaks(io);
    }

    [Fact]
    public void SocketIO_sends_each_datagram_with_its_own_ECN_and_returns_the_buffers()
    {
        var device = NewDevice();
        var socket = Network.CreateSocket(UdpEndpoint.FromIPv4([127, 0, 0, 1], 51820));
        var far = Network.CreateSocket(UdpEndpoint.FromIPv4([127, 0, 0, 2], 51820));
        var io = Sys.ActorOf(SocketIO.Props(socket, new FakeTun(), new EngineDevice(device), _registry, TestActor, _counters, new ManualClock(TimeSpan.Zero)));
        var batch = SendDatagrams.Rent();
        Ecn[] codepoints = [Ecn.Ect0, Ecn.Ce, Ecn.NotEct, Ecn.Ect1];
        foreach (var ecn in codepoints)
        {
            var buffer = _pool.Rent();
            var bytes = TransportDatagram(7);
            bytes.CopyTo(buffer.Writable);
            buffer.Length = bytes.Length;
            buffer.Ecn = ecn;
            buffer.Endpoint = far.Endpoint;
            batch.Add(buffer);
        }
        io.Tell(batch);
        AwaitCondition(() => Network.Log.Count == 4, Wait);
        Assert.Equal(codepoints, Network.Log.Select(d => d.SentEcn));
        Assert.All(Network.Log, d => Assert.Equal(far.Endpoint, d.To));
        var probe = CreateTestProbe();
        io.Tell(GetSocketStatus.Instance, probe.Ref);
        Assert.Equal(4, probe.ExpectMsg<SocketStatus>(Wait).DatagramsSent);
        StopAndAssertNoLeaks(io);
    }

    [Fact]
    public void Batches_sent_to_a_stopped_actor_are_reclaimed_from_dead_letters()
    {
        Tunnels.InstallReclaimer(Sys);
        var gone = CreateTestProbe();
        Watch(gone.Ref);
        Sys.Stop(gone.Ref);
        ExpectTerminated(gone.Ref, Wait);
        var batch = OutboundPackets.Rent();
        batch.Add(_pool.Rent());
        batch.Add(_pool.Rent());
        gone.Ref.Tell(batch);
        AwaitCondition(() => _pool.Outstanding == 0, Wait);
    }
}
