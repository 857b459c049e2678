using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Actors.Tun;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// Where a <see cref="PeerDataPath"/> step puts its results: sealed datagrams for the socket and
/// decrypted packets for the TUN device, collected into one batch each and handed on by
/// <see cref="Flush"/> (or as soon as a batch is full). One instance per stepper, used by one thread at
/// a time: a device's reads write directly (<see cref="DirectPeerOutput"/>, under the device's gate,
/// see BatchReaderThread), the PeerConnection actor tells its batches to SocketIO and the TunWriter
/// (<see cref="ActorPeerOutput"/>). Not thread-safe.
/// </summary>
public abstract class PeerOutput
{
    private SendDatagrams? _send;
    private WritePackets? _write;

    /// <summary>Takes ownership of a sealed datagram (its Endpoint and Ecn set).</summary>
    public void AddDatagram(PacketBuffer datagram)
    {
        var send = _send ??= SendDatagrams.Rent();
        send.Add(datagram);
        if (send.IsFull)
        {
            _send = null;
            Send(send);
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

    /// <summary>Hands on whatever was collected since the last flush.</summary>
    public void Flush()
    {
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

    /// <summary>Returns whatever is still collected to the pool (the owner is stopping or failed).</summary>
    public void Release()
    {
        _send?.Recycle();
        _send = null;
        _write?.Recycle();
        _write = null;
    }

    /// <summary>Sends <paramref name="batch"/> and owns it from here on (recycles it, also on failure).</summary>
    protected abstract void Send(SendDatagrams batch);

    /// <summary>Writes <paramref name="batch"/> and owns it from here on (recycles it, also on failure).</summary>
    protected abstract void Write(WritePackets batch);
}
