using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.EngineSeam;

/// <summary>The production <see cref="IWireGuardPeer"/>: forwards every call to the engine <see cref="Peer"/>.</summary>
public sealed class EnginePeer(Peer peer) : IWireGuardPeer
{
    public WireGuardKey PublicKey => peer.PublicKey;
    public UdpEndpoint Endpoint => peer.Endpoint;
    public UdpEndpoint LocalAddress => peer.LocalAddress;
    public DateTime? LastHandshakeUtc => peer.LastHandshakeUtc;
    public long RxBytes => peer.RxBytes;
    public void AttachReplayState(HandshakeReplayState state) => peer.AttachReplayState(state);
    public void RestoreEndpoint(UdpEndpoint endpoint, UdpEndpoint localAddress) => peer.RestoreEndpoint(endpoint, localAddress);

    public void Update(PeerConfig config, TimeSpan now, bool endpointNamed) => peer.Update(config, now, endpointNamed);
    public SealResult HandleTunPacket(PacketBuffer packet, TimeSpan now) => peer.HandleTunPacket(packet, now);
    public OpenResult HandleTransportData(PacketBuffer datagram, TimeSpan now) => peer.HandleTransportData(datagram, now);
    public HandshakeResult HandleHandshakeMessage(PacketBuffer datagram, TimeSpan now) => peer.HandleHandshakeMessage(datagram, now);
    public void Start(TimeSpan now) => peer.Start(now);
    public void Connect(TimeSpan now) => peer.Connect(now);
    public bool SendKeepaliveOnSession(TimeSpan now) => peer.SendKeepaliveOnSession(now);
    public void HandleTimeout(TimeSpan now) => peer.HandleTimeout(now);
    public TimeSpan? PollTimeout() => peer.PollTimeout();
    public bool PollTransmit(out PacketBuffer datagram) => peer.PollTransmit(out datagram);
    public int StagedCount => peer.StagedCount;
    public IEnumerable<PacketBuffer> StagedPackets => peer.StagedPackets;
    public bool IsStaged(PacketBuffer packet) => peer.IsStaged(packet);
    public PeerHandover? HandOver() => peer.HandOver();
    public bool TakeOver(PeerHandover handover, TimeSpan now) => peer.TakeOver(handover, now);
    public long HandshakeGiveUps => peer.HandshakeGiveUps;
    public void Dispose() => peer.Dispose();
}
