using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>A device seals and opens every transport message with the <see cref="ITransportAead"/> it was given (the host gives OpenSSL's).</summary>
public class TransportAeadSeamTests
{
    [Fact]
    public void Each_side_seals_and_opens_with_its_own_aead_and_a_forged_tag_is_refused_without_a_throw()
    {
        var a = new CountingAead();
        var b = new CountingAead();
        var wire = new WireHarness(seed: 91, aeadA: a, aeadB: b);
        Assert.Same(a, wire.A.Device.TransportAead);

        wire.Handshake();
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: i)));
        }
        Assert.Equal(SealResult.Sealed, wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: 9)));
        Assert.Equal(3, wire.B.Received.Count);
        Assert.Single(wire.A.Received);
        // One session: a sending and a receiving key on each side.
        Assert.Equal((2, 2), (a.KeysCreated, b.KeysCreated));
        // Every transport message either side put on the wire was sealed by its aead and opened by the other's.
        Assert.Equal(wire.Sent(wire.A, MessageType.TransportData).Count, a.Seals);
        Assert.Equal(wire.Sent(wire.B, MessageType.TransportData).Count, b.Seals);
        Assert.Equal((a.Seals, 0), (b.Opens, b.FailedOpens));
        Assert.Equal((b.Seals, 0), (a.Opens, a.FailedOpens));

        // A datagram whose tag was changed on the way: the aead refuses it, the engine drops it.
        wire.OnWire = (from, datagram) =>
        {
            datagram.Writable[datagram.Length - 1] ^= 0x01;
            return true;
        };
        var packet = TestPackets.Rent(wire.A.Pool, wire.PacketFrom(wire.A, tag: 5));
        Assert.Equal(SealResult.Sealed, wire.A.Peer.HandleTunPacket(packet, wire.Now));
        Delivery? delivery = wire.Send(wire.A, packet);
        Assert.Equal(OpenResult.AuthenticationFailed, delivery?.Open);
        Assert.Equal(1, b.FailedOpens);
        Assert.Equal(3, wire.B.Received.Count);

        wire.Dispose();
        Assert.Equal((2, 2), (a.KeysDisposed, b.KeysDisposed));
    }

    /// <summary>An AEAD whose seals throw while <see cref="Fail"/> is set (OpenSSL's EVP calls can fail).</summary>
    private sealed class FailingAead : ITransportAead
    {
        public bool Fail { get; set; }

        public string Name => "failing";

        public TransportAeadKey CreateKey(ReadOnlySpan<byte> key32) => new FailingKey(this, DotNetTransportAead.Instance.CreateKey(key32));

        private sealed class FailingKey(FailingAead owner, TransportAeadKey inner) : TransportAeadKey
        {
            public override void Seal(ulong counter, Span<byte> payload, Span<byte> tag16)
            {
                if (owner.Fail)
                {
                    throw new System.Security.Cryptography.CryptographicException("seal failed (test)");
                }
                inner.Seal(counter, payload, tag16);
            }

            public override bool TryOpen(ulong counter, Span<byte> ciphertext, ReadOnlySpan<byte> tag16) => inner.TryOpen(counter, ciphertext, tag16);

            protected override void Dispose(bool disposing) => inner.Dispose();
        }
    }

    /// <summary>
    /// Packets staged behind a handshake are sealed when it completes; when sealing one throws, it
    /// stays the peer's (Dispose returns it). It had no owner: taken out of the staged queue and
    /// never queued to send, it was lost to the pool (found by a review of the actor layer).
    /// </summary>
    [Fact]
    public void A_staged_packet_whose_seal_throws_stays_the_peers_and_goes_back_to_the_pool_on_dispose()
    {
        var failing = new FailingAead();
        var wire = new WireHarness(seed: 95, aeadA: failing);
        var first = TestPackets.Rent(wire.A.Pool, wire.PacketFrom(wire.A, tag: 1));
        var second = TestPackets.Rent(wire.A.Pool, wire.PacketFrom(wire.A, tag: 2));
        // No session yet: both are staged, and the first starts the handshake.
        Assert.Equal(SealResult.Queued, wire.A.Peer.HandleTunPacket(first, wire.Now));
        Assert.Equal(SealResult.Queued, wire.A.Peer.HandleTunPacket(second, wire.Now));
        Assert.Equal(2, wire.A.Peer.StagedCount);

        // The response completes the handshake on A, which seals its staged packets: the AEAD fails.
        failing.Fail = true;
        Assert.Throws<System.Security.Cryptography.CryptographicException>(() => wire.Pump());
        Assert.Equal(2, wire.A.Peer.StagedCount); // none lost from the queue
        failing.Fail = false;

        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }

    [Fact]
    public void Without_one_a_device_uses_dotnets()
    {
        using var device = new Device(WireHarness.RandomKey(new SeededRandomSource(92)), new PacketBufferPool(), new SeededRandomSource(93), DateTime.UnixEpoch);
        Assert.Same(DotNetTransportAead.Instance, device.TransportAead);
    }

    [Fact]
    public void Dotnets_refuses_a_bad_tag_with_false_and_a_zeroed_output()
    {
        var key = new byte[32];
        new SeededRandomSource(94).Fill(key);
        using var sealer = DotNetTransportAead.Instance.CreateKey(key);
        using var opener = DotNetTransportAead.Instance.CreateKey(key);
        var payload = new byte[100];
        Array.Fill(payload, (byte)0x5a);
        var tag = new byte[16];
        sealer.Seal(42, payload, tag);
        var sealedCopy = (byte[])payload.Clone();
        Assert.False(opener.TryOpen(41, payload, tag)); // another counter: another nonce
        Assert.All(payload, b => Assert.Equal(0, b));
        sealedCopy.CopyTo(payload, 0);
        Assert.True(opener.TryOpen(42, payload, tag));
        Assert.All(payload, b => Assert.Equal(0x5a, b));
    }
}
