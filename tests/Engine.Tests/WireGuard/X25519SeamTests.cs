using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>A device does every DH of its handshakes with the <see cref="IX25519"/> it was given (the host gives OpenSSL's).</summary>
public class X25519SeamTests
{
    private sealed class CountingX25519 : IX25519
    {
        public int PublicKeys, SharedSecrets, KeysCreated, KeyPublicKeys, KeyDh, KeysDisposed;

        public string Name => "counting";

        public void PublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey32)
        {
            Interlocked.Increment(ref PublicKeys);
            BouncyCastleX25519.Instance.PublicKey(privateKey, publicKey32);
        }

        public bool TrySharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared32)
        {
            Interlocked.Increment(ref SharedSecrets);
            return BouncyCastleX25519.Instance.TrySharedSecret(privateKey, publicKey, shared32);
        }

        public X25519PrivateKey CreatePrivateKey(ReadOnlySpan<byte> privateKey)
        {
            Interlocked.Increment(ref KeysCreated);
            return new CountedKey(this, BouncyCastleX25519.Instance.CreatePrivateKey(privateKey));
        }

        private sealed class CountedKey(CountingX25519 owner, X25519PrivateKey inner) : X25519PrivateKey
        {
            public override void PublicKey(Span<byte> publicKey32)
            {
                Interlocked.Increment(ref owner.KeyPublicKeys);
                inner.PublicKey(publicKey32);
            }

            public override bool TrySharedSecret(ReadOnlySpan<byte> publicKey, Span<byte> shared32)
            {
                Interlocked.Increment(ref owner.KeyDh);
                return inner.TrySharedSecret(publicKey, shared32);
            }

            protected override void Dispose(bool disposing)
            {
                Interlocked.Increment(ref owner.KeysDisposed);
                inner.Dispose();
            }
        }
    }

    [Fact]
    public void Each_side_computes_its_handshake_with_its_own_x25519_and_the_static_key_object()
    {
        var a = new CountingX25519();
        var b = new CountingX25519();
        var wire = new WireHarness(seed: 81, x25519A: a, x25519B: b);
        // The device's public key, and its static key made once.
        Assert.Equal((1, 1), (a.PublicKeys, a.KeysCreated));
        Assert.Same(a, wire.A.Device.X25519);

        wire.Handshake();
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: 1)));
        Assert.Single(wire.B.Received);

        // Initiator: an ephemeral key object for its public key and DH(E_i, S_r); DH(S_i, S_r) with the
        // static key (once per peer); then DH(E_i, E_r) from the bytes and DH(S_i, E_r) with the static key.
        Assert.Equal((1, 1, 2, 1, 3), (a.PublicKeys, a.SharedSecrets, a.KeysCreated, a.KeyPublicKeys, a.KeyDh));
        // Responder: DH(S_r, E_i) once (the initiation's stash) and DH(S_r, S_i) with the static key;
        // an ephemeral key object for its public key, DH(E_r, E_i) and DH(E_r, S_i).
        Assert.Equal((1, 0, 2, 1, 4), (b.PublicKeys, b.SharedSecrets, b.KeysCreated, b.KeyPublicKeys, b.KeyDh));
        wire.Dispose();
    }

    private sealed class FailingX25519 : IX25519
    {
        public bool Fail { get; set; }

        public string Name => "failing";

        public void PublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey32) => BouncyCastleX25519.Instance.PublicKey(privateKey, publicKey32);

        public bool TrySharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared32) =>
            BouncyCastleX25519.Instance.TrySharedSecret(privateKey, publicKey, shared32);

        public X25519PrivateKey CreatePrivateKey(ReadOnlySpan<byte> privateKey) =>
            Fail ? throw new System.Security.Cryptography.CryptographicException("X25519 failed (test)") : BouncyCastleX25519.Instance.CreatePrivateKey(privateKey);
    }

    /// <summary>
    /// A packet that starts a handshake is staged first; when the handshake then throws, the caller
    /// still owns the packet (it returns it, as the reader's batch does) and the peer must not hold
    /// it too. It did: the peer's Dispose returned it a second time, by when the pool may have lent
    /// it to a reader again (two owners; found by a review of the actor layer, 2026-11-27).
    /// </summary>
    [Fact]
    public void A_packet_whose_handshake_throws_stays_with_the_caller_alone()
    {
        var failing = new FailingX25519();
        var wire = new WireHarness(seed: 82, x25519A: failing);
        failing.Fail = true;
        var buffer = TestPackets.Rent(wire.A.Pool, wire.PacketFrom(wire.A, tag: 1));
        Assert.Throws<System.Security.Cryptography.CryptographicException>(() => wire.A.Peer.HandleTunPacket(buffer, wire.Now));
        buffer.Return(); // the caller's, as PeerDataPath's batch recycles it
        wire.A.Peer.Dispose(); // returned it again before: the pool threw, or lent it twice
        Assert.Equal(0, wire.A.Pool.Outstanding);
        failing.Fail = false;
        wire.Dispose();
    }

    /// <summary>
    /// A keepalive is staged and sealed; the rekey its send triggers (the initiator's session is past
    /// Rekey-After-Time, whitepaper section 6.2) then throws. The sealed keepalive is queued to go,
    /// not put back among the staged packets to be sealed a second time (found by a review of the
    /// change that keeps a packet whose seal throws).
    /// </summary>
    [Fact]
    public void A_packet_sealed_before_its_rekey_throws_is_queued_once_not_staged_again()
    {
        var failing = new FailingX25519();
        var wire = new WireHarness(seed: 86, x25519A: failing);
        wire.Handshake(); // A is the initiator
        wire.AdvanceTo(TimeSpan.FromSeconds(115));
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: 1)));
        Assert.Single(wire.A.Received);

        // A owes B a keepalive 10 s after that (section 6.5); by then A's session is 125 s old.
        failing.Fail = true;
        Assert.Throws<System.Security.Cryptography.CryptographicException>(() => wire.AdvanceTo(TimeSpan.FromSeconds(126)));
        failing.Fail = false;
        Assert.Equal(0, wire.A.Peer.StagedCount);
        Assert.True(wire.A.Peer.PollTransmit(out var keepalive));
        Assert.Equal(MessageType.TransportData, MessageHeader.Classify(keepalive.Data, out _));
        Assert.Equal(MessageHeader.TransportMinSize, keepalive.Length); // sealed once: header and tag around nothing
        keepalive.Return();
        Assert.False(wire.A.Peer.PollTransmit(out _));

        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
    }

    [Fact]
    public void Disposing_the_device_disposes_its_static_key()
    {
        var x25519 = new CountingX25519();
        var device = new Device(WireHarness.RandomKey(new SeededRandomSource(84)), new Firezone.Actors.Engine.Buffers.PacketBufferPool(), new SeededRandomSource(85),
            DateTime.UnixEpoch, x25519: x25519);
        Assert.Equal(0, x25519.KeysDisposed);
        device.Dispose();
        Assert.Equal(1, x25519.KeysDisposed);
    }

    [Fact]
    public void Without_one_a_device_uses_BouncyCastle()
    {
        var device = new Device(WireHarness.RandomKey(new SeededRandomSource(82)), new Firezone.Actors.Engine.Buffers.PacketBufferPool(), new SeededRandomSource(83), DateTime.UnixEpoch);
        Assert.Same(BouncyCastleX25519.Instance, device.X25519);
    }
}
