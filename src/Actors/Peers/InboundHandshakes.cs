using Firezone.Actors.Actors.Batches;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// Handshake initiations as received, for the PeerSupervisor: an initiation names its peer only
/// once its static key is decrypted (whitepaper section 5.4.2), so it cannot be routed by index.
/// </summary>
public sealed class InboundHandshakes : PacketBatch
{
    public static InboundHandshakes Rent() => BatchPool<InboundHandshakes>.Rent();

    private protected override void ReturnToPool() => BatchPool<InboundHandshakes>.Return(this);
}
