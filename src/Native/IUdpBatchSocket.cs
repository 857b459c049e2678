using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native;

/// <summary>
/// A UDP socket seen as batches of datagrams, each with its own endpoint and ECN codepoint (the
/// shape of wireguard-go's conn.Bind). Implemented by <c>LinuxUdpSocket</c> (recvmmsg/sendmmsg)
/// and by in-memory fakes in tests.
/// </summary>
public interface IUdpBatchSocket : IDisposable
{
    /// <summary>The bound port (useful when bound to port 0).</summary>
    int LocalPort { get; }

    /// <summary>
    /// Blocks until a datagram is queued, for at most <paramref name="timeoutMs"/> (-1: no limit, 0:
    /// just look), or until <see cref="WakeReceiver"/> is called. True when a receive would find
    /// something (or a reader took it first), at once while datagrams are pending; false on timeout
    /// and once woken for stop. Throws
    /// <see cref="UdpSocketException"/> when the socket is unusable. Any thread.
    /// </summary>
    bool WaitReadable(int timeoutMs);

    /// <summary>
    /// Receives the datagrams queued now without waiting: fills up to <c>buffers.Length</c> buffers
    /// (data at <see cref="PacketBuffer.Headroom"/>, with <see cref="PacketBuffer.Length"/>,
    /// <see cref="PacketBuffer.Endpoint"/> = source and <see cref="PacketBuffer.Ecn"/> = received
    /// codepoint) and returns how many (0: none). The received buffers come first in the span, in
    /// arrival order. A datagram larger than its buffer may come in a larger buffer of the socket's
    /// own, put in that place of the span; the buffer it replaced is returned to its pool. Throws
    /// <see cref="UdpSocketException"/> when the socket is unusable. One receive at a time: threads
    /// that share the socket serialise them.
    /// </summary>
    int TryReceiveBatch(Span<PacketBuffer> buffers);

    /// <summary>
    /// True when an earlier receive left datagrams in this object (GRO reads split into more
    /// datagrams than its span held), which the next receive hands out. A thread blocked in poll
    /// does not see them, so a reader that leaves some must receive again or
    /// <see cref="KickReceiver"/> the one that waits.
    /// </summary>
    bool HasPendingDatagrams { get; }

    /// <summary>
    /// Makes a thread blocked in <see cref="WaitReadable"/> return true once, for a receive on another
    /// thread that left <see cref="HasPendingDatagrams"/>. Unlike <see cref="WakeReceiver"/> it does not stop it.
    /// </summary>
    void KickReceiver();

    /// <summary>
    /// Sends each datagram's <see cref="PacketBuffer.Data"/> to its <see cref="PacketBuffer.Endpoint"/>
    /// with its own <see cref="PacketBuffer.Ecn"/> (DSCP 0). Returns how many were handed to the
    /// kernel; datagrams refused for transient reasons are skipped and counted. Buffers stay owned
    /// by the caller. Safe to call from several threads (one batch at a time goes out), and while
    /// another thread receives.
    /// </summary>
    int SendBatch(ReadOnlySpan<PacketBuffer> datagrams) => SendBatch(datagrams, default);

    /// <summary>
    /// As <see cref="SendBatch(ReadOnlySpan{PacketBuffer})"/>, and sets <c>unsent[i]</c> to the errno
    /// for each datagram <c>i</c> the kernel did not take (refused: ENETUNREACH, EPERM from a
    /// firewall...; dropped: EAGAIN or ENOBUFS on a buffer that stayed full, EAFNOSUPPORT for an
    /// IPv6 destination on an IPv4-only socket), so its sender can take it off what it counts as sent
    /// (`wg show`'s transfer counts only what left, as wireguard-go's and the kernel's do) and say
    /// why. Slots of datagrams sent are left as they were (pass them zeroed). <paramref name="unsent"/>
    /// is empty (nothing wanted) or at least as long as <paramref name="datagrams"/>.
    /// </summary>
    int SendBatch(ReadOnlySpan<PacketBuffer> datagrams, Span<int> unsent);

    /// <summary>
    /// Wakes a thread blocked in <see cref="WaitReadable"/>, for good: every later wait returns false
    /// at once, except while datagrams are pending (<see cref="HasPendingDatagrams"/>).
    /// </summary>
    void WakeReceiver();

    /// <summary>Datagrams received and dropped for want of a buffer large enough (see LinuxUdpSocket.Oversize.cs); 0 when not counted.</summary>
    long ReceiveTruncated => 0;

    /// <summary>
    /// Reads dropped because the kernel cut their control data (MSG_CTRUNC: the ECN codepoint or a GRO
    /// read's segment size may be missing, see LinuxUdpSocket.ControlTruncated.cs); 0 when not counted.
    /// </summary>
    long ReceiveControlTruncated => 0;

    /// <summary>
    /// Receives the kernel refused with an errno that does not mean the socket is gone (ENOMEM...):
    /// each read nothing and the reads went on (see LinuxUdpSocket.ReceiveErrors.cs); 0 when not counted.
    /// </summary>
    long ReceiveErrors => 0;

    /// <summary>errno of the last receive counted in <see cref="ReceiveErrors"/>; 0 when none or not counted.</summary>
    int LastReceiveErrno => 0;

    /// <summary>
    /// Send messages whose source address (<see cref="PacketBuffer.LocalAddress"/>) the host no
    /// longer has, sent again from the kernel's choice; 0 when not counted.
    /// </summary>
    long SourcesDropped => 0;

    /// <summary>
    /// GSO sends the kernel refused (the path's MTU below the segment, or no offload on the route),
    /// whose datagrams then went one by one; 0 when not counted.
    /// </summary>
    long GsoRefused => 0;
}
