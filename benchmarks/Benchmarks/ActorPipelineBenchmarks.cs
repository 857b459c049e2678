using System.Buffers.Binary;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Configuration;
using BenchmarkDotNet.Attributes;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Time;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.Packets;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Native;
using Firezone.Actors.Actors.Tests.Fakes;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// The whole actor pipeline with fake I/O: A's TunReader -> PeerConnection (copy-in, seal) ->
/// SocketIO -> in-memory wire -> B's SocketIO -> PeerConnection (open, copy-out) -> TunWriter.
/// Real engine crypto, real actors; the fakes copy into preallocated slots so they allocate
/// nothing themselves. One operation = one packet (OperationsPerInvoke), so "Allocated" is bytes
/// per packet across every thread.
///
///     dotnet run -c Release --project benchmarks/Benchmarks -- --filter '*ActorPipeline*'
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class ActorPipelineBenchmarks
{
    private const int PacketsPerInvoke = 8192;

    [Params(64, 1280)]
    public int PacketSize { get; set; }

    private ActorSystem _system = null!;
    private BenchTun _tunA = null!;
    private BenchTun _tunB = null!;
    private PacketBufferPool _poolA = null!;
    private PacketBufferPool _poolB = null!;

    [GlobalSetup]
    public void Setup()
    {
        _system = ActorSystem.Create("bench", ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.log-dead-letters = off"));
        var clock = new BootTimeClock();
        var endpointA = UdpEndpoint.FromIPv4([127, 0, 0, 1], 51001);
        var endpointB = UdpEndpoint.FromIPv4([127, 0, 0, 2], 51002);
        var socketA = new BenchSocket(endpointA);
        var socketB = new BenchSocket(endpointB);
        socketA.Far = socketB;
        socketB.Far = socketA;
        _poolA = new PacketBufferPool(preallocate: 4096);
        _poolB = new PacketBufferPool(preallocate: 4096);
        // The daemon's AEAD (OpenSSL's called straight where libcrypto has it), so the figures match it.
        ITransportAead aead = (ITransportAead?)OpenSslChaCha20Poly1305.Instance ?? DotNetTransportAead.Instance;
        var deviceA = new Device(RandomKey(), _poolA, CryptoRandomSource.Instance, clock.WallClockAtZero, static () => DateTime.UtcNow, transportAead: aead);
        var deviceB = new Device(RandomKey(), _poolB, CryptoRandomSource.Instance, clock.WallClockAtZero, static () => DateTime.UtcNow, transportAead: aead);
        _tunA = new BenchTun(Packet(PacketSize, "10.0.0.1", "10.0.0.2"));
        _tunB = new BenchTun(Packet(PacketSize, "10.0.0.2", "10.0.0.1"));
        var a = Tunnels.Start(_system, TunnelSettings.ForEngine(deviceA, _tunA, socketA, clock), "a");
        var b = Tunnels.Start(_system, TunnelSettings.ForEngine(deviceB, _tunB, socketB, clock), "b");
        _status = () => $"A: {Describe(a, deviceB.PublicKey)}; B: {Describe(b, deviceA.PublicKey)}";
        _queueFullDropsAtB = () => b.Ask<PeerStatus>(new GetPeerStatus(deviceA.PublicKey), TimeSpan.FromSeconds(10)).Result.QueueFullDrops;
        var timeout = TimeSpan.FromSeconds(10);
        b.Ask<PeerConfigured>(new AddOrUpdatePeer(new PeerConfig { PublicKey = deviceA.PublicKey, AllowedIps = [IpPrefix.Parse("10.0.0.1/32")] }), timeout).Wait();
        a.Ask<PeerConfigured>(new AddOrUpdatePeer(new PeerConfig { PublicKey = deviceB.PublicKey, Endpoint = endpointB, AllowedIps = [IpPrefix.Parse("10.0.0.2/32")] }), timeout).Wait();
        // Handshake first (the engine stages at most a few packets until it completes), then warm
        // every pool (buffers, batches, mailboxes).
        _tunB.ExpectWritten(1);
        _tunA.Release(1);
        if (!_tunB.WaitWritten(TimeSpan.FromSeconds(30)))
        {
            throw new InvalidOperationException("no handshake between the two benchmark tunnels");
        }
        for (int i = 0; i < 4; i++)
        {
            Pipeline();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _system.Terminate().Wait(TimeSpan.FromSeconds(10));
        Console.WriteLine($"// buffers outstanding after shutdown: A {_poolA.Outstanding}, B {_poolB.Outstanding}");
        Console.WriteLine($"// packets dropped by B's full actor path (overload, counted as done): {_dropped}");
    }

    [Benchmark(OperationsPerInvoke = PacketsPerInvoke, Description = "TUN A -> seal -> wire -> open -> TUN B, per packet")]
    public void Pipeline()
    {
        long target = _tunB.Written + PacketsPerInvoke;
        _tunB.ExpectWritten(target);
        _tunA.Release(PacketsPerInvoke);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!_tunB.WaitWritten(TimeSpan.FromMilliseconds(50)))
        {
            // Fake I/O has no pacing: when B's reader finds the peer busy (its lock held over a GC
            // pause) the packets go to the actor path, whose per-peer limit (1,024) drops the rest,
            // as a full queue drops under overload. Those are done too, and counted. (Asked only
            // here: an invoke takes a few milliseconds, and asking on every one would disturb it.)
            long drops = _queueFullDropsAtB();
            if (_tunB.Written + (drops - _dropped) >= target)
            {
                _dropped = drops;
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"pipeline stalled: {_tunB.Written} of {target} packets written at B ({_status()})");
            }
        }
    }

    private Func<string> _status = () => "";
    private Func<long> _queueFullDropsAtB = () => 0;
    private long _dropped;

    /// <summary>The peer's drop and rejection counters, for a stall's message.</summary>
    private static string Describe(IActorRef tunnel, WireGuardKey peer)
    {
        var status = tunnel.Ask<PeerStatus>(new GetPeerStatus(peer), TimeSpan.FromSeconds(10)).Result;
        return $"tx {status.TxPackets} rx {status.RxPackets} auth-failed {status.AuthenticationFailures} replayed {status.ReplayedRejected} " +
            $"no-keypair {status.NoKeypairRejected} malformed {status.MalformedRejected} outbound-dropped {status.OutboundDropped} " +
            $"queue-full {status.QueueFullDrops} restarts {status.Restarts} handshakes-rejected {status.HandshakesRejected}";
    }

    private static WireGuardKey RandomKey()
    {
        Span<byte> key = stackalloc byte[32];
        RandomNumberGenerator.Fill(key);
        return new WireGuardKey(key);
    }

    private static byte[] Packet(int size, string source, string destination)
    {
        var bytes = new byte[size];
        bytes[0] = 0x45;
        bytes[1] = (byte)Ecn.Ect0;
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)size);
        bytes[8] = 64;
        bytes[9] = 17;
        System.Net.IPAddress.Parse(source).TryWriteBytes(bytes.AsSpan(12, 4), out _);
        System.Net.IPAddress.Parse(destination).TryWriteBytes(bytes.AsSpan(16, 4), out _);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(10), Ipv4Checksum.Compute(bytes.AsSpan(0, 20)));
        return bytes;
    }

    /// <summary>Produces a given number of copies of one packet; counts writes.</summary>
    private sealed class BenchTun(byte[] packet) : ITunDevice
    {
        private Func<bool>? _nothingToRead;
        private readonly object _gate = new();
        private readonly ManualResetEventSlim _reached = new();
        private long _credits;
        private long _written;
        private long _target = long.MaxValue;
        private bool _woken;

        public string Name => "bench";
        public int Mtu => 1420;
        public long Written => Interlocked.Read(ref _written);

        public void Release(int packets)
        {
            lock (_gate)
            {
                _credits += packets;
                Monitor.PulseAll(_gate);
            }
        }

        public void ExpectWritten(long target)
        {
            _reached.Reset();
            Interlocked.Exchange(ref _target, target);
            if (Written >= target)
            {
                _reached.Set();
            }
        }

        public bool WaitWritten(TimeSpan timeout) => _reached.Wait(timeout);

        public bool HasPendingPackets => false;

        public bool WaitReadable(int timeoutMs)
        {
            lock (_gate)
            {
                // One delegate per fake, made on first use: no allocation per wait.
                if (!MonitorWait.While(_gate, _nothingToRead ??= () => _credits == 0 && !_woken, timeoutMs))
                {
                    return false;
                }
                return !_woken;
            }
        }

        public int TryReadBatch(Span<PacketBuffer> buffers)
        {
            int n;
            lock (_gate)
            {
                n = (int)Math.Min(_credits, buffers.Length);
                _credits -= n;
            }
            for (int i = 0; i < n; i++)
            {
                packet.CopyTo(buffers[i].Writable);
                buffers[i].Length = packet.Length;
            }
            return n;
        }

        public void WriteBatch(ReadOnlySpan<PacketBuffer> packets)
        {
            if (Interlocked.Add(ref _written, packets.Length) >= Interlocked.Read(ref _target))
            {
                _reached.Set();
            }
        }

        public void KickReader()
        {
        }

        public void WakeReader()
        {
            lock (_gate)
            {
                _woken = true;
                Monitor.PulseAll(_gate);
            }
        }

        public void Dispose() => _reached.Dispose();
    }

    /// <summary>A socket whose sends land in the far socket's ring of preallocated slots.</summary>
    private sealed class BenchSocket(UdpEndpoint endpoint) : IUdpBatchSocket
    {
        private Func<bool>? _nothingToRead;
        private const int Slots = 16384;
        private readonly object _gate = new();
        private readonly byte[][] _data = CreateSlots();
        private readonly int[] _length = new int[Slots];
        private readonly Ecn[] _ecn = new Ecn[Slots];
        private int _head;
        private int _count;
        private bool _woken;

        public BenchSocket? Far { get; set; }
        public int LocalPort => endpoint.Port;

        private static byte[][] CreateSlots()
        {
            var slots = new byte[Slots][];
            for (int i = 0; i < Slots; i++)
            {
                slots[i] = new byte[PacketBufferPool.DefaultBufferSize];
            }
            return slots;
        }

        public int SendBatch(ReadOnlySpan<PacketBuffer> datagrams, Span<int> unsent)
        {
            Far!.Enqueue(datagrams);
            return datagrams.Length;
        }

        private void Enqueue(ReadOnlySpan<PacketBuffer> datagrams)
        {
            lock (_gate)
            {
                foreach (var datagram in datagrams)
                {
                    while (_count == Slots)
                    {
                        Monitor.Wait(_gate);
                    }
                    int slot = (_head + _count) % Slots;
                    datagram.Data.CopyTo(_data[slot]);
                    _length[slot] = datagram.Length;
                    _ecn[slot] = datagram.Ecn;
                    _count++;
                }
                Monitor.PulseAll(_gate);
            }
        }

        public bool HasPendingDatagrams => false;

        public bool WaitReadable(int timeoutMs)
        {
            lock (_gate)
            {
                // One delegate per fake, made on first use: no allocation per wait.
                if (!MonitorWait.While(_gate, _nothingToRead ??= () => _count == 0 && !_woken, timeoutMs))
                {
                    return false;
                }
                return !_woken;
            }
        }

        public int TryReceiveBatch(Span<PacketBuffer> buffers)
        {
            lock (_gate)
            {
                int n = 0;
                while (n < buffers.Length && _count > 0)
                {
                    var buffer = buffers[n++];
                    _data[_head].AsSpan(0, _length[_head]).CopyTo(buffer.Writable);
                    buffer.Length = _length[_head];
                    buffer.Ecn = _ecn[_head];
                    buffer.Endpoint = Far!.Endpoint;
                    _head = (_head + 1) % Slots;
                    _count--;
                }
                Monitor.PulseAll(_gate);
                return n;
            }
        }

        public UdpEndpoint Endpoint => endpoint;

        public void KickReceiver()
        {
        }

        public void WakeReceiver()
        {
            lock (_gate)
            {
                _woken = true;
                Monitor.PulseAll(_gate);
            }
        }

        public void Dispose()
        {
        }
    }
}
