using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.EngineSeam;

/// <summary>
/// What a PeerConnection needs from one engine <see cref="Peer"/>: the same members, same buffer
/// ownership rules (see Peer's doc comments). A seam rather than the sealed class itself so the
/// actor tests can run a peer that fails on purpose (supervision) without any test hook in the
/// production path; production uses <see cref="EnginePeer"/>, a one-line forwarder per member.
/// </summary>
public interface IWireGuardPeer : IDisposable
{
    WireGuardKey PublicKey { get; }

    UdpEndpoint Endpoint { get; }

    /// <summary>See <see cref="Peer.LocalAddress"/>.</summary>
    UdpEndpoint LocalAddress { get; }

    DateTime? LastHandshakeUtc { get; }

    long RxBytes { get; }

    /// <summary>See <see cref="Peer.AttachReplayState"/>: initiation replay protection that outlives this instance.</summary>
    void AttachReplayState(HandshakeReplayState state);

    /// <summary>See <see cref="Peer.RestoreEndpoint"/>.</summary>
    void RestoreEndpoint(UdpEndpoint endpoint, UdpEndpoint localAddress);

    /// <summary>See <see cref="Peer.Update"/>.</summary>
    void Update(PeerConfig config, TimeSpan now, bool endpointNamed);

    SealResult HandleTunPacket(PacketBuffer packet, TimeSpan now);

    OpenResult HandleTransportData(PacketBuffer datagram, TimeSpan now);

    HandshakeResult HandleHandshakeMessage(PacketBuffer datagram, TimeSpan now);

    /// <summary>Once, when the peer goes live: with persistent keepalive on, sends one at once (as wireguard-go does on configuration).</summary>
    void Start(TimeSpan now);

    void Connect(TimeSpan now);

    /// <summary>See <see cref="Peer.SendKeepaliveOnSession"/>.</summary>
    bool SendKeepaliveOnSession(TimeSpan now);

    void HandleTimeout(TimeSpan now);

    TimeSpan? PollTimeout();

    bool PollTransmit(out PacketBuffer datagram);

    /// <summary>See <see cref="Peer.StagedCount"/>: packets held until a session exists.</summary>
    int StagedCount { get; }

    /// <summary>See <see cref="Peer.StagedPackets"/> (none by default).</summary>
    IEnumerable<PacketBuffer> StagedPackets => [];
    /// <summary>See <see cref="Peer.IsStaged"/>.</summary>
    bool IsStaged(PacketBuffer packet);

    /// <summary>See <see cref="Peer.HandOver"/>: the sessions moved out for a rebuilt device (null: none to give, the default).</summary>
    PeerHandover? HandOver() => null;

    /// <summary>See <see cref="Peer.TakeOver"/>; by default nothing is taken (the handover is disposed).</summary>
    bool TakeOver(PeerHandover handover, TimeSpan now)
    {
        handover.Dispose();
        return false;
    }

    /// <summary>See <see cref="Peer.HandshakeGiveUps"/>.</summary>
    long HandshakeGiveUps { get; }
}
