using Firezone.Actors.Actors.Batches;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// IP packets read from the TUN device, all routed to the receiving PeerConnection by their
/// destination (whitepaper section 2, cryptokey routing). Data at the buffer's offset, headroom
/// free for the transport header.
/// </summary>
public sealed class OutboundPackets : PacketBatch
{
    public static OutboundPackets Rent() => BatchPool<OutboundPackets>.Rent();

    private protected override void ReturnToPool() => BatchPool<OutboundPackets>.Return(this);
}
