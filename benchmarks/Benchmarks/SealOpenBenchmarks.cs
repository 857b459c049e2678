using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.Packets;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Native;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// Sealing and opening one 1420-byte packet in place with an established session (issue 3 item 8):
/// two engines handshake in memory in the setup; each operation reuses one pooled buffer, so the
/// allocation column must read 0 B. <see cref="Aead"/>: .NET's ChaCha20Poly1305 (the engine's
/// default) or OpenSSL's called straight (what the daemon uses).
/// </summary>
[MemoryDiagnoser]
public class SealOpenBenchmarks
{
    private const int PacketLength = 1420;
    private static readonly TimeSpan Now = TimeSpan.FromSeconds(1);
    private readonly byte[] _packet = new byte[PacketLength];
    private PacketBufferPool _pool = null!;
    private Peer _a = null!;
    private Peer _b = null!;
    private PacketBuffer _buffer = null!;

    [Params("dotnet", "openssl")]
    public string Aead { get; set; } = "dotnet";

    [GlobalSetup]
    public void Setup()
    {
        _pool = new PacketBufferPool(preallocate: 16);
        var random = new CryptoRandomSource();
        ITransportAead aead = Aead == "openssl"
            ? OpenSslChaCha20Poly1305.Instance ?? throw new InvalidOperationException("benchmark setup: OpenSSL's ChaCha20-Poly1305 did not load")
            : DotNetTransportAead.Instance;
        var deviceA = new Device(Key(1), _pool, random, DateTime.UnixEpoch, transportAead: aead);
        var deviceB = new Device(Key(2), _pool, random, DateTime.UnixEpoch, transportAead: aead);
        var endpointA = UdpEndpoint.FromIPv4([192, 0, 2, 1], 1);
        var endpointB = UdpEndpoint.FromIPv4([192, 0, 2, 2], 2);
        _a = new Peer(deviceA, new PeerConfig { PublicKey = deviceB.PublicKey, Endpoint = endpointB, AllowedIps = [IpPrefix.Parse("10.0.0.2/32")] });
        _b = new Peer(deviceB, new PeerConfig { PublicKey = deviceA.PublicKey, AllowedIps = [IpPrefix.Parse("10.0.0.1/32")] });

        // Handshake: initiation A->B, response B->A, keepalive A->B confirms B's keypair.
        _a.Connect(TimeSpan.Zero);
        Deliver(_a, _b, endpointA);
        Deliver(_b, _a, endpointB);
        Deliver(_a, _b, endpointA);
        if (!_a.HasSession(Now) || !_b.HasSession(Now))
        {
            throw new InvalidOperationException("benchmark setup: the handshake did not complete");
        }

        _packet[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(_packet.AsSpan(2), PacketLength);
        _packet[8] = 64;
        _packet[9] = 17;
        _packet[12] = 10;
        _packet[15] = 1;
        _packet[16] = 10;
        _packet[19] = 2;
        BinaryPrimitives.WriteUInt16BigEndian(_packet.AsSpan(10), Ipv4Checksum.Compute(_packet.AsSpan(0, 20)));
        _buffer = _pool.Rent();
    }

    /// <summary>A fixed key from <paramref name="seed"/> (the handshake benchmark uses it too).</summary>
    internal static WireGuardKey Key(byte seed)
    {
        var bytes = new byte[32];
        new Random(seed).NextBytes(bytes);
        return new WireGuardKey(bytes);
    }

    private static void Deliver(Peer from, Peer to, UdpEndpoint source)
    {
        while (from.PollTransmit(out var datagram))
        {
            datagram.Endpoint = source;
            var type = MessageHeader.Classify(datagram.Data, out _);
            if (type == MessageType.TransportData)
            {
                to.HandleTransportData(datagram, TimeSpan.Zero);
            }
            else
            {
                to.HandleHandshakeMessage(datagram, TimeSpan.Zero);
            }
            datagram.Return();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _buffer.Return();
        _a.Dispose();
        _b.Dispose();
    }

    /// <summary>Seal only: header into the headroom, padding, ChaCha20-Poly1305 in place, tag.</summary>
    [Benchmark]
    public SealResult Seal()
    {
        _buffer.SetData(PacketBuffer.Headroom, PacketLength); // sealing re-encrypts the previous bytes; the cost is the same
        return _a.HandleTunPacket(_buffer, Now);
    }

    /// <summary>Seal on one engine, then open on the other (replay window, decrypt in place, IP validation, allowed-IPs source check).</summary>
    [Benchmark]
    public OpenResult SealThenOpen()
    {
        _packet.CopyTo(_buffer.Memory[PacketBuffer.Headroom..]);
        _buffer.SetData(PacketBuffer.Headroom, PacketLength);
        _a.HandleTunPacket(_buffer, Now);
        return _b.HandleTransportData(_buffer, Now);
    }
}
