using BenchmarkDotNet.Attributes;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Native;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// One whole handshake in memory, initiation to response (whitepaper 5.4.2 and 5.4.3), CPU of both
/// sides: A initiates, B admits it (mac1), finds the peer by decrypting msg.static, and its peer
/// consumes the initiation and writes the response, which A consumes. The two methods differ only
/// in how B finds the peer: on the buffer (as the PeerSupervisor does; the peer reuses what the device
/// decrypted, <see cref="InitiationStash"/>) or on the bytes alone (the peer decrypts msg.static again,
/// one X25519 more), so their ratio is what the reuse saves per handshake. <see cref="X25519"/> picks
/// the DH implementation of both devices: BouncyCastle's (the engine's default) or OpenSSL's (the
/// daemon's, <see cref="OpenSslX25519"/>).
/// </summary>
[MemoryDiagnoser]
public class HandshakeBenchmarks
{
    private static readonly UdpEndpoint EndpointA = UdpEndpoint.FromIPv4([192, 0, 2, 1], 1);
    private static readonly UdpEndpoint EndpointB = UdpEndpoint.FromIPv4([192, 0, 2, 2], 2);
    private Device _deviceA = null!;
    private Device _deviceB = null!;
    private Peer _a = null!;
    private Peer _b = null!;
    private TimeSpan _now;

    [Params("BouncyCastle", "OpenSSL")]
    public string X25519 { get; set; } = "BouncyCastle";

    [GlobalSetup]
    public void Setup()
    {
        var pool = new PacketBufferPool(preallocate: 16);
        var random = new CryptoRandomSource();
        IX25519 x25519 = X25519 == "OpenSSL"
            ? OpenSslX25519.Instance ?? throw new InvalidOperationException("benchmark setup: libcrypto's X25519 is not available")
            : BouncyCastleX25519.Instance;
        var deviceA = _deviceA = new Device(SealOpenBenchmarks.Key(1), pool, random, DateTime.UnixEpoch, x25519: x25519);
        _deviceB = new Device(SealOpenBenchmarks.Key(2), pool, random, DateTime.UnixEpoch, x25519: x25519);
        _a = new Peer(deviceA, new PeerConfig { PublicKey = _deviceB.PublicKey, Endpoint = EndpointB, AllowedIps = [IpPrefix.Parse("10.0.0.2/32")] });
        _b = new Peer(_deviceB, new PeerConfig { PublicKey = deviceA.PublicKey, AllowedIps = [IpPrefix.Parse("10.0.0.1/32")] });
        _now = TimeSpan.FromSeconds(1);
        if (Handshake(identifyOnBuffer: true) != HandshakeResult.Accepted || Handshake(identifyOnBuffer: false) != HandshakeResult.Accepted)
        {
            throw new InvalidOperationException("benchmark setup: the handshake did not complete");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _a.Dispose();
        _b.Dispose();
    }

    /// <summary>B finds the peer as the PeerSupervisor does, and its peer reuses what was decrypted.</summary>
    [Benchmark(Baseline = true)]
    public HandshakeResult IdentifyOnBuffer() => Handshake(identifyOnBuffer: true);

    /// <summary>B finds the peer from the bytes alone; its peer decrypts msg.static again.</summary>
    [Benchmark]
    public HandshakeResult IdentifyOnBytes() => Handshake(identifyOnBuffer: false);

    private HandshakeResult Handshake(bool identifyOnBuffer)
    {
        // Past REKEY_TIMEOUT, so A may initiate again, and a later TAI64N timestamp for B's replay check.
        _now += TimeSpan.FromSeconds(6);
        _a.Connect(_now);
        if (!_a.PollTransmit(out var initiation))
        {
            throw new InvalidOperationException("A sent no initiation");
        }
        initiation.Endpoint = EndpointA;
        HandshakeResult result = HandshakeResult.Rejected;
        if (_deviceB.AdmitHandshake(initiation, underLoad: false, _now, out _) == HandshakeAdmission.Accept
            && (identifyOnBuffer ? _deviceB.TryIdentifyInitiator(initiation, out _) : _deviceB.TryIdentifyInitiator(initiation.Data, out _)))
        {
            result = _b.HandleHandshakeMessage(initiation, _now);
        }
        initiation.Return();
        if (result != HandshakeResult.Accepted || !_b.PollTransmit(out var response))
        {
            return HandshakeResult.Rejected;
        }
        response.Endpoint = EndpointB;
        result = _deviceA.AdmitHandshake(response, underLoad: false, _now, out _) == HandshakeAdmission.Accept
            ? _a.HandleHandshakeMessage(response, _now)
            : HandshakeResult.Rejected;
        response.Return();
        Drain(_a);
        Drain(_b);
        return result;
    }

    private static void Drain(Peer peer)
    {
        while (peer.PollTransmit(out var datagram))
        {
            datagram.Return();
        }
    }
}
