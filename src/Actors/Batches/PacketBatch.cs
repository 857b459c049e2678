using Akka.Event;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Actors.Batches;

/// <summary>
/// Up to <see cref="Capacity"/> pooled buffers moving between actors in one message (STYLE.md rule 5:
/// one message per batch, never per packet). Ownership is a move: the sender fills a batch, Tells
/// it and never touches it or its buffers again; the receiver owns both and must either pass each
/// buffer on or return it, then <see cref="Recycle"/> the batch. The concrete message types
/// (OutboundPackets, InboundDatagrams, SendDatagrams, WritePackets) are declared next to the actor
/// that receives them; each has its own small pool of batch objects, so steady-state traffic
/// allocates no batches either.
///
/// A slot is nulled as soon as its buffer moves on (<see cref="Take"/>), so a receiver that fails
/// half-way through a batch can still return exactly what it holds (<see cref="ReturnAll"/>).
/// Batches that end up in dead letters (the receiver stopped) are reclaimed by BufferReclaimer;
/// <see cref="IDeadLetterSuppression"/> keeps them out of the dead-letter log.
/// </summary>
public abstract class PacketBatch : IDeadLetterSuppression
{
    /// <summary>
    /// A TUN read (64 packets) fits one batch per destination; a socket read (up to 256 datagrams)
    /// may fill several for one peer, which go on in order (PeerGroups, SocketIO's handshakes).
    /// </summary>
    public const int Capacity = 128;

    private readonly PacketBuffer[] _buffers = new PacketBuffer[Capacity]; // taken slots hold null
    private int _count;

    /// <summary>
    /// The peer whose actor-path backlog this batch counts in (see <see cref="PeerSlot.HasBacklog"/>),
    /// or null. Whoever finishes the batch calls <see cref="PeerSlot.ExitBacklog"/>; cleared on recycle.
    /// </summary>
    internal PeerSlot? Backlog { get; set; }

    /// <summary>The packets this batch counts in its peer's backlog (<see cref="PeerSlot.BacklogPackets"/>), set with <see cref="Backlog"/>.</summary>
    internal int BacklogPackets { get; set; }

    /// <summary>Slots used (some may be null once taken).</summary>
    public int Count => _count;

    public bool IsFull => _count == Capacity;

    public bool IsEmpty => _count == 0;

    /// <summary>The buffer in slot <paramref name="index"/>, or null once taken.</summary>
    public PacketBuffer? this[int index] => _buffers[index];

    /// <summary>Appends a buffer; the batch now owns it.</summary>
    public void Add(PacketBuffer buffer)
    {
        if (_count == Capacity)
        {
            throw new InvalidOperationException($"packet batch full ({Capacity} buffers)");
        }
        _buffers[_count++] = buffer;
    }

    /// <summary>Removes and returns the buffer in slot <paramref name="index"/> (ownership moves to the caller).</summary>
    public PacketBuffer? Take(int index)
    {
        var buffer = _buffers[index];
        _buffers[index] = null!;
        return buffer;
    }

    /// <summary>
    /// The slots as a span for a batch I/O call (WriteBatch, SendBatch). Only valid while no slot
    /// has been taken.
    /// </summary>
    public ReadOnlySpan<PacketBuffer> AsSpan() => new(_buffers, 0, _count);

    /// <summary>Returns every buffer still held to its pool. Returns the number returned.</summary>
    public int ReturnAll()
    {
        int returned = 0;
        for (int i = 0; i < _count; i++)
        {
            var buffer = _buffers[i];
            if (buffer is not null)
            {
                _buffers[i] = null!;
                buffer.Return();
                returned++;
            }
        }
        _count = 0;
        return returned;
    }

    /// <summary>Returns any buffers still held, then gives the batch object back to its pool. The caller must not touch it afterwards.</summary>
    public void Recycle()
    {
        ReturnAll();
        Backlog = null;
        BacklogPackets = 0;
        ReturnToPool();
    }

    private protected abstract void ReturnToPool();
}
