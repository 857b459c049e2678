using Firezone.Actors.Actors.Batches;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Actors.Socket;

/// <summary>
/// Sealed datagrams for SocketIO to send, each with its own <c>Endpoint</c> and outer <c>Ecn</c>
/// (ECN.md: never one codepoint for a whole batch), and the counters of the peer whose engine
/// sealed it, so the socket adds what it sent to that peer's transfer and counts what it did not.
/// </summary>
public sealed class SendDatagrams : PacketBatch
{
    // Parallel to the slots: the peer that counted each datagram in its tx bytes, or null (a cookie
    // reply, which no peer counts, as in wireguard-go). One reference store per datagram.
    private readonly PeerCounters?[] _senders = new PeerCounters?[Capacity];

    public static SendDatagrams Rent() => BatchPool<SendDatagrams>.Rent();

    /// <summary>Cookie replies in this batch, counted in <see cref="Tunnel.TunnelCounters.CookieRepliesQueued"/> until SocketIO has sent it; cleared on recycle.</summary>
    internal int CookieReplies { get; set; }

    /// <summary>Appends a datagram that <paramref name="sender"/>'s engine counted as sent (null: nobody did).</summary>
    public void Add(PacketBuffer datagram, PeerCounters? sender)
    {
        int slot = Count;
        Add(datagram);
        _senders[slot] = sender;
    }

    /// <summary>
    /// Sends the batch on <paramref name="socket"/>, adds what it sent to each peer's transfer (one
    /// atomic add per run of a peer's datagrams, not per datagram) and counts what it did not send,
    /// with the reason. Returns how many were sent. Buffers stay in the batch.
    /// </summary>
    public int SendOn(Native.IUdpBatchSocket socket)
    {
        Span<int> unsent = stackalloc int[Count]; // zeroed: 0 is "sent"
        int sent = socket.SendBatch(AsSpan(), unsent);
        PeerCounters? run = null;
        long runBytes = 0;
        Span<int> runByEcn = stackalloc int[4];
        for (int i = 0; i < Count; i++)
        {
            if (_senders[i] is not { } sender || this[i] is not { } datagram)
            {
                continue;
            }
            if (unsent[i] != 0)
            {
                sender.CountUnsent(datagram, unsent[i]);
                continue;
            }
            if (!ReferenceEquals(sender, run))
            {
                run?.CountSent(runBytes, runByEcn);
                run = sender;
                runBytes = 0;
                runByEcn.Clear();
            }
            runBytes += datagram.Length;
            runByEcn[(int)datagram.Ecn & 3]++;
        }
        run?.CountSent(runBytes, runByEcn);
        return sent;
    }

    /// <summary>
    /// The batch is not sent (its owner stopped or failed before handing it on, or its receiver is
    /// gone): recycled. Neither in its peers' transfer and ECN sent counts, which count what the
    /// socket sent, nor counted as not sent by the socket: the socket never saw them.
    /// </summary>
    public void Discard() => Recycle();

    private protected override void ReturnToPool()
    {
        Array.Clear(_senders);
        CookieReplies = 0;
        BatchPool<SendDatagrams>.Return(this);
    }
}
