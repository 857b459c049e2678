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
/// once; beyond that, and on a socket without GRO (whose read cuts such a datagram short), the
/// datagram is dropped and counted in <see cref="ReceiveTruncated"/>.
/// </summary>
public sealed partial class LinuxUdpSocket
{
    /// <summary>Large buffers out at once at most (4 MiB): enough for a burst of a jumbo peer, bounded for a flood.</summary>
    public const int MaxOversizeBuffers = 64;

    private const int OversizeBufferBytes = PacketBuffer.Headroom + GroReceiveSlots.SlotBytes + PacketBuffer.Tailroom;

    private PacketBufferPool? _oversize;

    /// <summary>Datagrams larger than the caller's buffers, received whole into the socket's own large buffers.</summary>
    public long ReceivedOversize { get; private set; }

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
