using Firezone.Actors.Actors.Batches;

namespace Firezone.Actors.Actors.Socket;

/// <summary>
/// Sealed datagrams for SocketIO to send, each with its own <c>Endpoint</c> and outer <c>Ecn</c>
/// (ECN.md: never one codepoint for a whole batch).
/// </summary>
public sealed class SendDatagrams : PacketBatch
{
    public static SendDatagrams Rent() => BatchPool<SendDatagrams>.Rent();

    private protected override void ReturnToPool() => BatchPool<SendDatagrams>.Return(this);
}
