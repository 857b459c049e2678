using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>What happened to one datagram at the receiving node.</summary>
public readonly record struct Delivery(MessageType Type, HandshakeAdmission? Admission, HandshakeResult? Handshake, OpenResult? Open);

/// <summary>
/// One side of the in-memory wire: a Device with one Peer (the other side), its own buffer pool and
/// UDP endpoint. <see cref="Receive"/> dispatches a datagram the way the socket reader and the peer
/// actor will: classify, admit handshakes at the device, route by receiver index or initiator key.
/// </summary>
public sealed class Node
{
    public Node(string name, WireGuardKey privateKey, UdpEndpoint endpoint, byte[] tunAddress, IRandomSource random, DateTime wallClockAtZero,
        Func<DateTime>? wallClock = null, IX25519? x25519 = null, ITransportAead? transportAead = null)
    {
        Name = name;
        Pool = new PacketBufferPool(preallocate: 8);
        Device = new Device(privateKey, Pool, random, wallClockAtZero, wallClock, x25519, transportAead) { PeersWriteAllowedIps = true };
        _wallClockAtZero = wallClockAtZero;
        _wallClock = wallClock;
        _x25519 = x25519;
        _transportAead = transportAead;
        Endpoint = endpoint;
        TunAddress = tunAddress;
    }

    private readonly DateTime _wallClockAtZero;
    private readonly Func<DateTime>? _wallClock;
    private readonly IX25519? _x25519;
    private readonly ITransportAead? _transportAead;

    public string Name { get; }
    public PacketBufferPool Pool { get; private set; }
    public Device Device { get; private set; }

    /// <summary>
    /// As the host rebuilds its tunnel for a jumbo MTU: a new device with <paramref name="privateKey"/>
    /// on a new pool of bigger buffers (the same crypto implementations); returns the old pool, whose
    /// buffers the old peer still returns. <see cref="Peer"/> is the test's to replace.
    /// </summary>
    public PacketBufferPool ReplaceDevice(WireGuardKey privateKey, IRandomSource random)
    {
        var old = Pool;
        Pool = new PacketBufferPool(bufferSize: 9216, preallocate: 8);
        Device = new Device(privateKey, Pool, random, _wallClockAtZero, _wallClock, _x25519, _transportAead) { PeersWriteAllowedIps = true };
        return old;
    }
    public Peer Peer { get; set; } = null!;
    public UdpEndpoint Endpoint { get; set; }

    /// <summary>The local address datagrams for this node arrive at (none: the socket did not say).</summary>
    public UdpEndpoint LocalAddress { get; set; }
    public byte[] TunAddress { get; }
    public bool UnderLoad { get; set; }

    /// <summary>Inner packets opened for the TUN, with the outer ECN the datagram carried.</summary>
    public List<(byte[] Packet, Ecn OuterEcn)> Received { get; } = [];

    /// <summary>For each entry of <see cref="Received"/>: the receiver index and counter it came with, and when.</summary>
    public List<(uint Receiver, ulong Counter, TimeSpan At)> ReceivedFrom { get; } = [];

    public List<Delivery> Deliveries { get; } = [];

    /// <summary>Cookie replies the device produced, waiting to go out.</summary>
    public Queue<PacketBuffer> DeviceOutbox { get; } = new();

    /// <summary>Handles a received datagram; the node owns <paramref name="datagram"/> and returns it.</summary>
    public Delivery Receive(PacketBuffer datagram, TimeSpan now)
    {
        try
        {
            var type = MessageHeader.Classify(datagram.Data, out uint receiver);
            Delivery delivery;
            switch (type)
            {
                case MessageType.TransportData:
                {
                    if (!Device.Indices.TryLookup(receiver, out var owner) || owner != Peer.PublicKey)
                    {
                        delivery = new Delivery(type, null, null, OpenResult.NoKeypair);
                        break;
                    }
                    ulong counter = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(datagram.Data[8..]);
                    var result = Peer.HandleTransportData(datagram, now);
                    if (result == OpenResult.Packet)
                    {
                        Received.Add((datagram.Data.ToArray(), datagram.Ecn));
                        ReceivedFrom.Add((receiver, counter, now));
                    }
                    delivery = new Delivery(type, null, null, result);
                    break;
                }
                case MessageType.Initiation:
                case MessageType.Response:
                case MessageType.CookieReply:
                {
                    var admission = Device.AdmitHandshake(datagram, UnderLoad, now, out var cookie);
                    if (admission == HandshakeAdmission.SendCookie)
                    {
                        DeviceOutbox.Enqueue(cookie!);
                    }
                    if (admission != HandshakeAdmission.Accept)
                    {
                        delivery = new Delivery(type, admission, null, null);
                        break;
                    }
                    bool forOurPeer = type == MessageType.Initiation
                        ? Device.TryIdentifyInitiator(datagram, out var initiator) && initiator == Peer.PublicKey
                        : Device.Indices.TryLookup(receiver, out var owner) && owner == Peer.PublicKey;
                    if (!forOurPeer)
                    {
                        delivery = new Delivery(type, admission, HandshakeResult.Rejected, null);
                        break;
                    }
                    delivery = new Delivery(type, admission, Peer.HandleHandshakeMessage(datagram, now), null);
                    break;
                }
                default:
                    delivery = new Delivery(type, null, null, null);
                    break;
            }
            Deliveries.Add(delivery);
            return delivery;
        }
        finally
        {
            datagram.Return();
        }
    }
}

/// <summary>
/// Two engines back to back in memory (the wireguard-go `bindtest` idea): PollTransmit output of one
/// side is copied into a buffer of the other side's pool and handled there. Time moves only when a
/// test says so; timers fire in deadline order.
/// </summary>
public sealed class WireHarness : IDisposable
{
    public static readonly byte[] AddressA = [10, 10, 0, 1];
    public static readonly byte[] AddressB = [10, 10, 0, 2];

    /// <param name="wallClockA">A's wall-clock source (see <see cref="Device"/>); null: <see cref="WallClockAtZero"/> plus <see cref="Now"/>.</param>
    /// <param name="wallClockB">B's, likewise.</param>
    public WireHarness(int seed = 1, WireGuardKey? presharedKey = null, ushort persistentKeepaliveA = 0, ushort persistentKeepaliveB = 0,
        bool bKnowsEndpointOfA = false, IRandomSource? randomA = null, IRandomSource? randomB = null,
        Func<DateTime>? wallClockA = null, Func<DateTime>? wallClockB = null, IX25519? x25519A = null, IX25519? x25519B = null,
        ITransportAead? aeadA = null, ITransportAead? aeadB = null)
    {
        var seeds = new SeededRandomSource(seed);
        WallClockAtZero = new DateTime(2026, 11, 25, 12, 0, 0, DateTimeKind.Utc);
        PrivateA = RandomKey(seeds);
        PrivateB = RandomKey(seeds);
        A = new Node("A", PrivateA, UdpEndpoint.FromIPv4([192, 0, 2, 1], 51820), AddressA, randomA ?? new SeededRandomSource(seed * 31 + 1), WallClockAtZero, wallClockA, x25519A, aeadA);
        B = new Node("B", PrivateB, UdpEndpoint.FromIPv4([192, 0, 2, 2], 51821), AddressB, randomB ?? new SeededRandomSource(seed * 31 + 2), WallClockAtZero, wallClockB, x25519B, aeadB);
        A.Peer = new Peer(A.Device, new PeerConfig
        {
            PublicKey = B.Device.PublicKey,
            PresharedKey = presharedKey,
            Endpoint = B.Endpoint,
            PersistentKeepaliveSeconds = persistentKeepaliveA,
            AllowedIps = [IpPrefix.Parse("10.10.0.2/32"), IpPrefix.Parse("fd00::2/128")],
        });
        B.Peer = new Peer(B.Device, new PeerConfig
        {
            PublicKey = A.Device.PublicKey,
            PresharedKey = presharedKey,
            Endpoint = bKnowsEndpointOfA ? A.Endpoint : UdpEndpoint.None,
            PersistentKeepaliveSeconds = persistentKeepaliveB,
            AllowedIps = [IpPrefix.Parse("10.10.0.1/32"), IpPrefix.Parse("fd00::1/128")],
        });
    }

    public static WireGuardKey RandomKey(IRandomSource random)
    {
        Span<byte> bytes = stackalloc byte[32];
        random.Fill(bytes);
        return new WireGuardKey(bytes);
    }

    public DateTime WallClockAtZero { get; }
    public WireGuardKey PrivateA { get; }
    public WireGuardKey PrivateB { get; }
    public Node A { get; }
    public Node B { get; }
    public TimeSpan Now { get; set; }

    /// <summary>Every datagram put on the wire: sender, bytes, outer ECN, destination, time.</summary>
    public List<(Node From, byte[] Bytes, Ecn Ecn, UdpEndpoint To, TimeSpan At)> Wire { get; } = [];

    /// <summary>Parallel to <see cref="Wire"/>: the local address each datagram was to leave from.</summary>
    public List<UdpEndpoint> WireSource { get; } = [];

    /// <summary>The datagrams <paramref name="from"/> sent of one message type.</summary>
    public List<(Node From, byte[] Bytes, Ecn Ecn, UdpEndpoint To, TimeSpan At)> Sent(Node from, MessageType type) =>
        Wire.Where(w => ReferenceEquals(w.From, from) && MessageHeader.Classify(w.Bytes, out _) == type).ToList();

    /// <summary>Called for each datagram in flight; return false to lose it. May mutate the bytes.</summary>
    public Func<Node, PacketBuffer, bool>? OnWire { get; set; }

    public Node Other(Node node) => ReferenceEquals(node, A) ? B : A;

    public enum Direction { AToB, BToA }

    public Direction DirectionFrom(Node from) => ReferenceEquals(from, A) ? Direction.AToB : Direction.BToA;

    /// <summary>Moves everything both sides want to send until both are quiet.</summary>
    public void Pump()
    {
        for (int round = 0; round < 10_000; round++)
        {
            bool moved = false;
            foreach (var node in new[] { A, B })
            {
                while (node.DeviceOutbox.TryDequeue(out var cookie))
                {
                    Send(node, cookie);
                    moved = true;
                }
                while (node.Peer.PollTransmit(out var datagram))
                {
                    Send(node, datagram);
                    moved = true;
                }
            }
            if (!moved)
            {
                return;
            }
        }
        throw new InvalidOperationException("the two engines never went quiet");
    }

    /// <summary>Puts one datagram (owned by <paramref name="from"/>) on the wire; the sender's buffer is returned.</summary>
    public Delivery? Send(Node from, PacketBuffer datagram)
    {
        var to = Other(from);
        Wire.Add((from, datagram.Data.ToArray(), datagram.Ecn, datagram.Endpoint, Now));
        WireSource.Add(datagram.LocalAddress);
        if (OnWire is { } filter && !filter(from, datagram))
        {
            datagram.Return();
            return null;
        }
        var copy = to.Pool.Rent();
        datagram.Data.CopyTo(copy.Writable);
        copy.Length = datagram.Length;
        copy.Ecn = datagram.Ecn;
        copy.Endpoint = from.Endpoint;
        copy.LocalAddress = to.LocalAddress;
        datagram.Return();
        return to.Receive(copy, Now);
    }

    /// <summary>Delivers raw bytes to <paramref name="to"/> as if they came from <paramref name="source"/>.</summary>
    public Delivery Inject(Node to, ReadOnlySpan<byte> bytes, UdpEndpoint source, Ecn ecn = Ecn.NotEct)
    {
        var buffer = to.Pool.Rent();
        bytes.CopyTo(buffer.Writable);
        buffer.Length = bytes.Length;
        buffer.Endpoint = source;
        buffer.Ecn = ecn;
        return to.Receive(buffer, Now);
    }

    /// <summary>A TUN packet on <paramref name="from"/>: sealed and sent at once, queued, or dropped; then pumps.</summary>
    public SealResult SendPacket(Node from, byte[] packet, Ecn outerEcn = Ecn.NotEct)
    {
        var buffer = TestPackets.Rent(from.Pool, packet, outerEcn);
        var result = from.Peer.HandleTunPacket(buffer, Now);
        switch (result)
        {
            case SealResult.Sealed:
                Send(from, buffer);
                break;
            case SealResult.Dropped:
                buffer.Return();
                break;
        }
        Pump();
        return result;
    }

    /// <summary>An IPv4 packet from <paramref name="from"/>'s tunnel address to the other side's.</summary>
    public byte[] PacketFrom(Node from, int length = 100, Ecn ecn = Ecn.NotEct, int tag = 0) =>
        TestPackets.Ipv4(from.TunAddress, Other(from).TunAddress, length, ecn, tag);

    /// <summary>Runs timers in deadline order up to <paramref name="target"/>, pumping after each.</summary>
    public void AdvanceTo(TimeSpan target)
    {
        for (int step = 0; step < 100_000; step++)
        {
            TimeSpan? next = Earliest(A.Peer.PollTimeout(), B.Peer.PollTimeout());
            if (next is not { } due || due > target)
            {
                break;
            }
            if (due > Now)
            {
                Now = due;
            }
            A.Peer.HandleTimeout(Now);
            B.Peer.HandleTimeout(Now);
            Pump();
        }
        Now = target;
    }

    public void Advance(TimeSpan by) => AdvanceTo(Now + by);

    /// <summary>A handshake started by A, completed, and confirmed by A's keepalive.</summary>
    public void Handshake()
    {
        A.Peer.Connect(Now);
        Pump();
    }

    private static TimeSpan? Earliest(TimeSpan? a, TimeSpan? b) =>
        a is null ? b : b is null ? a : (a < b ? a : b);

    /// <summary>Disposes both sides, then asserts every buffer went back to its pool and every receiver index was freed.</summary>
    public void DisposeAndAssertNoLeaks()
    {
        Dispose();
        Assert.Equal(0, A.Pool.Outstanding);
        Assert.Equal(0, B.Pool.Outstanding);
        Assert.Equal(0, A.Device.Indices.Count);
        Assert.Equal(0, B.Device.Indices.Count);
    }

    public void Dispose()
    {
        A.Peer.Dispose();
        B.Peer.Dispose();
        while (A.DeviceOutbox.TryDequeue(out var a))
        {
            a.Return();
        }
        while (B.DeviceOutbox.TryDequeue(out var b))
        {
            b.Return();
        }
    }
}
