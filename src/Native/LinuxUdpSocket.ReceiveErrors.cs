using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// A receive the kernel refuses with an errno that does not mean the socket is gone (ENOMEM under
/// memory pressure, ENOBUFS, anything this code has no rule for) is counted in
/// <see cref="ReceiveErrors"/> and reads as "nothing now"; the tunnel goes on. Only the errnos that
/// mean the call itself cannot work on this descriptor throw (<see cref="IsReceiveLost"/>): the
/// tunnel stops with the error, as before. A refused recvmmsg reads nothing, so the datagrams stay
/// queued in the socket for the next read.
///
/// wireguard-go (device/receive.go, RoutineReceiveIncoming) ends its receive routine on such an
/// error: Go's net.Error.Temporary() is false for every errno but EINTR, EMFILE, ENFILE, EAGAIN and
/// ETIMEDOUT, and for those it sleeps a third of a second, at most ten times in a row, then ends too.
/// The routine's end is logged at the verbose level only, and the device stays up without receiving
/// on that socket until its next bind: a tunnel that looks up and passes nothing. Here the reads go
/// on, the count is a metric and the tunnel's owner logs it (rate-limited).
///
/// The pause: the socket stays readable while the error lasts (the datagram that the read would
/// have taken is still queued), so a reader that polls and reads again would spin at 100% CPU
/// making system calls that fail. After a refused read the next <see cref="WaitReadable"/> first
/// waits <see cref="ReceiveErrorPauseMs"/> on the stop wake and the kick only (a stop is not
/// delayed): a persistent error costs at most 1000 / <see cref="ReceiveErrorPauseMs"/> calls a
/// second, and a passing one delays the datagrams queued behind it by that much (they wait in the
/// socket's receive buffer, not lost). Until that pause, <see cref="TryReceiveBatch"/> makes no call
/// (a partner thread polling for a reply reads without waiting), so the bound holds for all readers.
/// </summary>
public sealed unsafe partial class LinuxUdpSocket
{
    /// <summary>How long a reader waits after a refused read before it polls the socket again.</summary>
    public const int ReceiveErrorPauseMs = 10;

    /// <summary>
    /// This socket's pause (<see cref="ReceiveErrorPauseMs"/>; a test sets a long one, so that a
    /// wait that sat out the pause instead of ending at the stop wake takes seconds, not 10 ms a
    /// descheduled test thread could take as well).
    /// </summary>
    internal int ReceiveErrorPause { get; set; } = ReceiveErrorPauseMs;

    /// <summary>Reads the kernel refused with an errno that does not mean the socket is gone (see the class comment).</summary>
    public long ReceiveErrors { get; private set; }

    /// <summary>errno of the last refused read, for the log (0: none yet).</summary>
    public int LastReceiveErrno { get; private set; }

    // Set by the thread whose read was refused (the reader's own, or its partner's in a reply
    // poll), cleared by the reader's next wait once it has paused.
    private volatile bool _receiveRefused;

    /// <summary>Sorts a failed read's errno: quiet, counted, or the socket is lost (throws).</summary>
    private void CheckReceiveError(int errno)
    {
        // EAGAIN: nothing after all; EINTR: signal; the rest are ICMP errors queued on the socket
        // (reported once, then gone): all mean "wait again", and none is a fault.
        if (errno == LibC.EAGAIN || errno == LibC.EINTR || errno == LibC.ECONNREFUSED
            || errno == LibC.EHOSTUNREACH || errno == LibC.ENETUNREACH || errno == LibC.EMSGSIZE)
        {
            return;
        }
        if (IsReceiveLost(errno))
        {
            throw new UdpSocketException($"receiving UDP datagrams failed: {Errno.Describe(errno)}", errno);
        }
        ReceiveErrors++;
        LastReceiveErrno = errno;
        _receiveRefused = true;
    }

    /// <summary>
    /// The errnos after which no read on this descriptor can succeed: EBADF and ENOTSOCK (not a socket
    /// of ours any more), and EFAULT and EINVAL (the call's own pointers or arguments are wrong; a
    /// receive names no destination, so unlike a send's EINVAL, for port 0 or a source address gone
    /// from the host, nothing from the network gives it). Every later read would fail the same way.
    /// </summary>
    private static bool IsReceiveLost(int errno) =>
        IsSocketLost(errno) || errno == LibC.EINVAL;

    /// <summary>
    /// The pause owed after a refused read, at the start of <see cref="WaitReadable"/> (see the class
    /// comment). False when the wait ends here, with <paramref name="readable"/> its answer: woken
    /// for stop, kicked (datagrams pending in this object), the caller only looking (timeout 0: the
    /// pause stays owed) or its timeout spent. True: poll the socket for what is left of <paramref name="timeoutMs"/>.
    /// </summary>
    private bool PauseAfterRefusedReceive(ref int timeoutMs, out bool readable)
    {
        readable = false;
        if (timeoutMs == 0)
        {
            return false;
        }
        int pause = timeoutMs < 0 ? ReceiveErrorPause : Math.Min(timeoutMs, ReceiveErrorPause);
        switch (DescriptorWait.Pause(_wake, _kick, pause))
        {
            case DescriptorWait.Outcome.Woken:
                return false;
            case DescriptorWait.Outcome.Kicked:
                readable = true;
                return false;
        }
        _receiveRefused = false;
        if (timeoutMs > 0)
        {
            timeoutMs -= pause;
            return timeoutMs > 0;
        }
        return true;
    }
}
