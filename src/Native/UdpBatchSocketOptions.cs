namespace Firezone.Actors.Native;

/// <summary>
/// How to open a <see cref="LinuxUdpSocket"/>.
/// </summary>
public sealed record UdpBatchSocketOptions
{
    /// <summary>Port to bind; 0 lets the kernel choose (see <see cref="LinuxUdpSocket.LocalPort"/>).</summary>
    public int ListenPort { get; init; }

    public UdpSocketFamily Family { get; init; } = UdpSocketFamily.DualStack;

    /// <summary>Most datagrams per recvmmsg/sendmmsg call; native arrays of this size are allocated once.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>
    /// SO_RCVBUF wish; SO_RCVBUFFORCE is tried first (root may exceed net.core.rmem_max). 1 MiB (the
    /// kernel books 2 MiB): every peer's datagrams wait in this one queue, so while a Gateway's
    /// reader is the bottleneck its size is the delay of an idle peer's packets behind the busy ones'.
    /// With 8 MiB, an idle peer's ping took 17 to 33 ms while 9 peers uploaded in bulk (wireguard-go,
    /// 212,992 bytes: 5.3 ms); with 256 KiB, 4 ms, at the same total. The side-by-side benchmark
    /// gave the same TCP and UDP figures at 8 MiB, 1 MiB and 256 KiB (README "The socket's receive queue").
    /// </summary>
    public int ReceiveBufferBytes { get; init; } = DefaultReceiveBufferBytes;

    /// <summary>The default of <see cref="ReceiveBufferBytes"/>: 1 MiB.</summary>
    public const int DefaultReceiveBufferBytes = 1 << 20;

    /// <summary>SO_SNDBUF wish; SO_SNDBUFFORCE is tried first.</summary>
    public int SendBufferBytes { get; init; } = 8 << 20;

    /// <summary>
    /// True: recvmmsg/sendmmsg, one system call per batch. False: one recvmsg/sendmsg per datagram
    /// (same control messages), for sandboxes without the mmsg calls and as the benchmark baseline.
    /// </summary>
    public bool UseMmsg { get; init; } = true;

    /// <summary>
    /// UDP GSO (<c>UDP_SEGMENT</c>, Linux 4.18): consecutive datagrams of a batch to the same endpoint
    /// with the same ECN codepoint and the same length (the last may be shorter) leave as one send that
    /// the kernel cuts into datagrams. Never mixes codepoints (ECN.md: one GSO send has one TOS cmsg
    /// for all its segments). Used only when the kernel supports it; turned off for the socket's life
    /// when a send fails with EIO (no checksum offload on the route), as wireguard-go does.
    /// </summary>
    public bool UseGso { get; init; } = true;

    /// <summary>
    /// UDP GRO (<c>UDP_GRO</c>, Linux 5.0): the kernel may hand over several datagrams of one flow as
    /// one read (it only coalesces datagrams with the same source, length and TOS/traffic class), which
    /// the socket splits back into pooled buffers. Costs one 64 KiB receive slot per
    /// <see cref="BatchSize"/> message (4 MiB at 64) and one copy per datagram.
    /// </summary>
    public bool UseGro { get; init; } = true;
}
