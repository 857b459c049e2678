namespace Firezone.Actors.Native;

/// <summary>
/// How to open a <see cref="LinuxUdpSocket"/>.
///
/// Room for offloads (performance issue, not implemented): UDP GSO (<c>UDP_SEGMENT</c>) and GRO
/// (<c>UDP_GRO</c>) would be two more flags here. Receive: each message already has a control slot
/// with room for a <c>UDP_GRO</c> cmsg (the segment size) next to the TOS/TCLASS one, and a GRO
/// receive would read into a larger buffer that the socket then splits into pooled buffers. Send:
/// each message carries its own cmsg block, where a <c>UDP_SEGMENT</c> cmsg can follow the ECN one;
/// one GSO message may only cover consecutive datagrams to the same endpoint with the same ECN
/// codepoint and size (see ECN.md: one GSO send has one cmsg for all its segments).
/// </summary>
public sealed record UdpBatchSocketOptions
{
    /// <summary>Port to bind; 0 lets the kernel choose (see <see cref="LinuxUdpSocket.LocalPort"/>).</summary>
    public int ListenPort { get; init; }

    public UdpSocketFamily Family { get; init; } = UdpSocketFamily.DualStack;

    /// <summary>Most datagrams per recvmmsg/sendmmsg call; native arrays of this size are allocated once.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>SO_RCVBUF wish; SO_RCVBUFFORCE is tried first (root may exceed net.core.rmem_max).</summary>
    public int ReceiveBufferBytes { get; init; } = 8 << 20;

    /// <summary>SO_SNDBUF wish; SO_SNDBUFFORCE is tried first.</summary>
    public int SendBufferBytes { get; init; } = 8 << 20;

    /// <summary>
    /// True: recvmmsg/sendmmsg, one system call per batch. False: one recvmsg/sendmsg per datagram
    /// (same control messages), for sandboxes without the mmsg calls and as the benchmark baseline.
    /// </summary>
    public bool UseMmsg { get; init; } = true;
}
