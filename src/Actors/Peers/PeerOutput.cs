using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Tun;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// Where a <see cref="PeerDataPath"/> step puts its results: sealed datagrams for the socket and
/// decrypted packets for the TUN device, collected into batches and handed on, in the order they
/// were added, by <see cref="Flush"/>. A full batch of packets is written at once; a full batch of
/// datagrams waits for the flush. Steps run under the peer's lock, and a send there can wait up to
/// 300 ms for room in the socket buffer, holding up the other reader and the peer's actor, which
/// step the same peer (the one exception: PeerDataPath.TryHandle flushes under the lock after a
/// step that released packets held for a handshake, so no newer packet overtakes them; rare).
/// A TUN write never waits like that, and writing a full batch while its
/// packets are still in the cache measured about 13% more UDP throughput than writing it at the
/// flush (2 side-by-side runs, 2026-11-26). One instance per stepper, used by one thread at a time:
/// a device's reads write directly (<see cref="DirectPeerOutput"/>, under the device's gate, see
/// BatchReaderThread), the PeerConnection actor tells its batches to SocketIO and the TunWriter
/// (<see cref="ActorPeerOutput"/>). Not thread-safe.
/// </summary>
public abstract class PeerOutput
{
    private SendDatagrams? _send;
    private WritePackets? _write;

    // Send batches that filled since the last flush, oldest first. Made at the first full one: each
    // idle peer's actor has an output, and 10,000 of them need not hold an empty queue.
    private Queue<SendDatagrams>? _fullSends;

    /// <summary>
    /// Takes ownership of a sealed datagram (its Endpoint and Ecn set) of <paramref name="sender"/>, in
    /// whose transfer and ECN sent counts the socket adds it once sent (null: nobody counts it, as a
    /// cookie reply, which wireguard-go leaves out of the transfer too).
    /// </summary>
    public void AddDatagram(PacketBuffer datagram, PeerCounters? sender)
    {
        var send = _send ??= SendDatagrams.Rent();
        send.Add(datagram, sender);
        if (send.IsFull)
        {
            _send = null;
            (_fullSends ??= new()).Enqueue(send);
        }
    }

    /// <summary>Takes ownership of a decrypted packet (copy-out applied).</summary>
    public void AddPacket(PacketBuffer packet)
    {
        var write = _write ??= WritePackets.Rent();
        write.Add(packet);
        if (write.IsFull)
        {
            _write = null;
            Write(write);
        }
    }

    /// <summary>Hands on whatever was collected since the last flush, oldest batch first.</summary>
    public void Flush()
    {
        // Dequeued before it is sent: Send owns the batch from the call, also when it throws, so
        // Release must not recycle it a second time.
        while (_fullSends is not null && _fullSends.TryDequeue(out var full))
        {
            Send(full);
        }
        if (_send is { } send)
        {
            _send = null;
            Send(send);
        }
        if (_write is { } write)
        {
            _write = null;
            Write(write);
        }
    }

    /// <summary>
    /// Returns whatever is still collected to the pool (the owner is stopping or failed); datagrams
    /// never sent come off their peers' transfer (a step that faulted had sealed and counted them).
    /// </summary>
    public void Release()
    {
        while (_fullSends is not null && _fullSends.TryDequeue(out var full))
        {
            full.Discard();
        }
        _send?.Discard();
        _send = null;
        _write?.Recycle();
        _write = null;
    }

    /// <summary>Sends <paramref name="batch"/> and owns it from here on (recycles it, also on failure).</summary>
    protected abstract void Send(SendDatagrams batch);

    /// <summary>Writes <paramref name="batch"/> and owns it from here on (recycles it, also on failure).</summary>
    protected abstract void Write(WritePackets batch);
}
