using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// The responder decrypts an initiation's msg.static once (whitepaper 5.4.2): the device, which must
/// do it to find the peer, leaves the result in the buffer for that peer (<see cref="InitiationStash"/>).
/// </summary>
public sealed class InitiationStashTests
{
    private const int StashSize = 96;

    /// <summary>A's first initiation to B, in a buffer of B's pool, admitted by B's device.</summary>
    private static PacketBuffer InitiationAtB(WireHarness wire)
    {
        wire.A.Peer.Connect(wire.Now);
        Assert.True(wire.A.Peer.PollTransmit(out var initiation));
        var copy = wire.B.Pool.Rent();
        initiation.Data.CopyTo(copy.Writable);
        copy.Length = initiation.Length;
        copy.Endpoint = wire.A.Endpoint;
        initiation.Return();
        Assert.Equal(HandshakeAdmission.Accept, wire.B.Device.AdmitHandshake(copy, underLoad: false, wire.Now, out _));
        return copy;
    }

    private static bool StashIsZero(PacketBuffer buffer) =>
        buffer.Memory[^StashSize..].IndexOfAnyExcept((byte)0) < 0;

    [Fact]
    public void The_peer_answers_with_the_same_response_whether_or_not_the_device_left_its_state()
    {
        byte[] Response(bool identifyOnBuffer)
        {
            using var wire = new WireHarness(seed: 77);
            var initiation = InitiationAtB(wire);
            WireGuardKey who;
            Assert.True(identifyOnBuffer
                ? wire.B.Device.TryIdentifyInitiator(initiation, out who)
                : wire.B.Device.TryIdentifyInitiator(initiation.Data, out who));
            Assert.Equal(wire.A.Device.PublicKey, who);
            Assert.Equal(identifyOnBuffer, initiation.StashOwner is not null);
            Assert.Equal(HandshakeResult.Accepted, wire.B.Peer.HandleHandshakeMessage(initiation, wire.Now));
            Assert.Null(initiation.StashOwner);
            Assert.True(StashIsZero(initiation));
            initiation.Return();
            Assert.True(wire.B.Peer.PollTransmit(out var response));
            var bytes = response.Data.ToArray();
            response.Return();
            // The response completes A's handshake: the keys agree.
            var back = wire.A.Pool.Rent();
            bytes.CopyTo(back.Writable);
            back.Length = bytes.Length;
            Assert.Equal(HandshakeAdmission.Accept, wire.A.Device.AdmitHandshake(back, false, wire.Now, out _));
            Assert.Equal(HandshakeResult.Accepted, wire.A.Peer.HandleHandshakeMessage(back, wire.Now));
            back.Return();
            return bytes;
        }

        // Same seeds, so the same ephemeral key: byte for byte the same response.
        Assert.Equal(Convert.ToHexString(Response(identifyOnBuffer: false)), Convert.ToHexString(Response(identifyOnBuffer: true)));
    }

    [Fact]
    public void The_peer_takes_the_state_the_device_left_instead_of_decrypting_again()
    {
        using var wire = new WireHarness(seed: 78);
        var initiation = InitiationAtB(wire);
        Assert.True(wire.B.Device.TryIdentifyInitiator(initiation, out _));
        // Spoil the chain key the device left: a peer that used it cannot open msg.timestamp, so the
        // rejection shows the peer took it rather than computing DH(S_priv_r, E_pub_i) again.
        initiation.Memory[^StashSize] ^= 1;
        Assert.Equal(HandshakeResult.Rejected, wire.B.Peer.HandleHandshakeMessage(initiation, wire.Now));
        Assert.True(StashIsZero(initiation));
        initiation.Return();
        Assert.False(wire.B.Peer.PollTransmit(out _));
    }

    [Fact]
    public void State_left_by_another_device_is_ignored()
    {
        using var wire = new WireHarness(seed: 79);
        var initiation = InitiationAtB(wire);
        // A device with B's key but another object (the tunnel rebuilt, say): its state is not taken,
        // the peer decrypts for itself and accepts.
        var twinPool = new PacketBufferPool(preallocate: 1);
        var twin = new Device(wire.PrivateB, twinPool, new SeededRandomSource(5), wire.WallClockAtZero);
        Assert.True(twin.TryIdentifyInitiator(initiation, out _));
        initiation.Memory[^StashSize] ^= 1; // would be rejected if it were used
        Assert.Equal(HandshakeResult.Accepted, wire.B.Peer.HandleHandshakeMessage(initiation, wire.Now));
        Assert.Null(initiation.StashOwner);
        Assert.True(StashIsZero(initiation));
        initiation.Return();
        Assert.True(wire.B.Peer.PollTransmit(out var response));
        response.Return();
    }

    [Fact]
    public void State_from_a_device_with_another_key_does_not_let_a_peer_accept_an_initiation_it_cannot_decrypt()
    {
        using var wire = new WireHarness(seed: 80);
        // C initiates to its own responder device D; D identifies it and leaves the state. The buffer
        // then reaches B's peer for C (C's key configured at B): B cannot decrypt an initiation made
        // for D's key, and must not accept it on D's state.
        var keyC = WireHarness.RandomKey(new SeededRandomSource(8080));
        var keyD = WireHarness.RandomKey(new SeededRandomSource(8081));
        var poolC = new PacketBufferPool(preallocate: 2);
        var deviceC = new Device(keyC, poolC, new SeededRandomSource(81), wire.WallClockAtZero);
        var deviceD = new Device(keyD, wire.B.Pool, new SeededRandomSource(82), wire.WallClockAtZero);
        var peerCtoD = new Peer(deviceC, new PeerConfig { PublicKey = deviceD.PublicKey, Endpoint = wire.B.Endpoint });
        var peerBtoC = new Peer(wire.B.Device, new PeerConfig { PublicKey = deviceC.PublicKey });
        peerCtoD.Connect(wire.Now);
        Assert.True(peerCtoD.PollTransmit(out var initiation));
        var copy = wire.B.Pool.Rent();
        initiation.Data.CopyTo(copy.Writable);
        copy.Length = initiation.Length;
        initiation.Return();
        Assert.True(deviceD.TryIdentifyInitiator(copy, out var who));
        Assert.Equal(deviceC.PublicKey, who);
        Assert.Equal(HandshakeResult.Rejected, peerBtoC.HandleHandshakeMessage(copy, wire.Now));
        copy.Return();
        Assert.False(peerBtoC.PollTransmit(out _));
        peerCtoD.Dispose();
        peerBtoC.Dispose();
    }

    [Fact]
    public void The_state_is_zeroed_when_the_buffer_is_reset()
    {
        using var wire = new WireHarness(seed: 81);
        var initiation = InitiationAtB(wire);
        Assert.True(wire.B.Device.TryIdentifyInitiator(initiation, out _));
        Assert.False(StashIsZero(initiation));
        initiation.Reset();
        Assert.Null(initiation.StashOwner);
        Assert.True(StashIsZero(initiation));
        initiation.Return();
    }

    [Fact]
    public void The_state_is_zeroed_when_the_buffer_goes_back_to_its_pool_untaken()
    {
        using var wire = new WireHarness(seed: 82);
        var initiation = InitiationAtB(wire);
        Assert.True(wire.B.Device.TryIdentifyInitiator(initiation, out _));
        Assert.False(StashIsZero(initiation));
        initiation.Return(); // dropped before any peer took it (the peer actor was gone, say)
        Assert.Null(initiation.StashOwner);
        Assert.True(StashIsZero(initiation)); // the array waits in the pool for the next renter
        var again = wire.B.Pool.Rent();
        Assert.Same(initiation, again);
        again.Return();
    }
}
