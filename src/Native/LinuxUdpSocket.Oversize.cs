using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native;

/// <summary>
/// Datagrams larger than the caller's buffers. The tunnel's buffers are sized for its own MTU, but a
/// peer with a larger MTU (a jumbo-frame LAN, a hand-set MTU of 1500 against the default 1420) sends
/// packets up to its own: WireGuard accepts any packet up to 64 KiB whatever the receiver's MTU (the
/// kernel's module and wireguard-go read into 64 KiB buffers), and the kernel takes such a packet
/// from the TUN device. So a GRO read that holds one is copied into a buffer from a small pool of
/// 64 KiB buffers of the socket's own, made at the first such datagram, and the caller's buffer in
/// that slot of its span goes back to its pool. Up to <see cref="MaxOversizeBuffers"/> may be out at
/// once, as many as a reader pass takes (SocketIO reads up to 256 datagrams); made as needed and
/// kept, so a jumbo peer's bulk flow costs up to 16 MiB. When none is free, a pass that has packets
/// already ends there and the datagram waits in its GRO slot for the next pass; one that has none
/// (a consumer holds them all) drops it, as does a socket without GRO (whose read cuts such a
/// datagram short), counted in <see cref="ReceiveTruncated"/>.
/// </summary>
public sealed partial class LinuxUdpSocket
{
    /// <summary>Large buffers out at once at most (16 MiB): a whole reader pass of a jumbo peer, bounded for a flood.</summary>
    public const int MaxOversizeBuffers = 256;

    private const int OversizeBufferBytes = PacketBuffer.Headroom + GroReceiveSlots.SlotBytes + PacketBuffer.Tailroom;

    private PacketBufferPool? _oversize;

    /// <summary>Datagrams larger than the caller's buffers, received whole into the socket's own large buffers.</summary>
    public long ReceivedOversize { get; private set; }

    /// <summary>Large buffers handed out and not returned yet (0 once every packet is written: a leak check).</summary>
    public int OversizeOutstanding => _oversize?.Outstanding ?? 0;

    /// <summary>
    /// Replaces <paramref name="slot"/> (returned to its pool) with a large buffer that holds
    /// <paramref name="size"/> bytes; false when none is free.
    /// </summary>
    private bool TryTakeOversize(int size, ref PacketBuffer slot)
    {
        var pool = _oversize ??= new PacketBufferPool(OversizeBufferBytes, preallocate: 0, maxBuffers: MaxOversizeBuffers);
        if (!pool.TryRent(out var large))
        {
            return false;
        }
        if (size > large.MaxPacketLength)
        {
            large.Return();
            return false;
        }
        slot.Return();
        slot = large;
        ReceivedOversize++;
        return true;
    }
}
