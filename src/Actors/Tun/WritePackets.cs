using Firezone.Actors.Actors.Batches;

namespace Firezone.Actors.Actors.Tun;

/// <summary>Decrypted inner packets (copy-out already applied) for the TunWriter to write to the TUN device.</summary>
public sealed class WritePackets : PacketBatch
{
    public static WritePackets Rent() => BatchPool<WritePackets>.Rent();

    private protected override void ReturnToPool() => BatchPool<WritePackets>.Return(this);
}
