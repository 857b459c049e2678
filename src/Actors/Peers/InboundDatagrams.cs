using Firezone.Actors.Actors.Batches;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// Received datagrams for one PeerConnection: transport data, responses and cookie replies routed by
/// receiver index, or initiations already admitted and identified by the PeerSupervisor. Each
/// buffer carries its source <c>Endpoint</c> and the received outer <c>Ecn</c> (for copy-out).
/// </summary>
public sealed class InboundDatagrams : PacketBatch
{
    public static InboundDatagrams Rent() => BatchPool<InboundDatagrams>.Rent();

    private protected override void ReturnToPool() => BatchPool<InboundDatagrams>.Return(this);
}
