using System.Runtime.InteropServices;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// UDP GSO on send (<c>UDP_SEGMENT</c>, Linux 4.18; see the kernel's
/// Documentation/networking/segmentation-offloads.rst and tools/testing/selftests/net/udpgso.c):
/// one sendmmsg message carries a run of datagrams with a <c>UDP_SEGMENT</c> cmsg giving their
/// size, and the stack builds and routes one large datagram that is cut into real ones at the
/// device (in software when the device cannot). That crosses the UDP/IP stack once per run instead
/// of once per datagram.
///
/// A run's datagrams share one sendmsg, hence one destination and one IP_TOS / IPV6_TCLASS cmsg:
/// it only ever holds datagrams with the same ECN codepoint (ECN.md, issue 8: an early Firezone
/// version mixed codepoints in one GSO batch). The datagrams stay in their pooled buffers; the
/// message has one iovec per datagram and the kernel copies them in sequence, cutting the total at
/// every gso_size bytes, so no datagram is copied in user space.
/// </summary>
public sealed unsafe partial class LinuxUdpSocket
{
    /// <summary>
    /// Most datagrams in one GSO send. The kernel's limit UDP_MAX_SEGMENTS was 64 until Linux 6.6
    /// (then 128); wireguard-go and quinn use 64 as well.
    /// </summary>
    internal const int MaxGsoSegments = 64;

    /// <summary>
    /// Most payload bytes in one GSO send: the large datagram must still fit an IPv4 total length
    /// (65535 minus the 20-byte IPv4 and 8-byte UDP headers; IPv6 would allow 65527).
    /// </summary>
    internal const int MaxGsoBytes = 65535 - 20 - 8;

    /// <summary>True while sends are grouped with UDP_SEGMENT (the kernel has it, the option asks for it, no EIO yet).</summary>
    public bool GsoEnabled { get; private set; }

    /// <summary>GSO sends that left (each with two or more datagrams).</summary>
    public long GsoSends { get; private set; }

    /// <summary>Datagrams that left inside GSO sends.</summary>
    public long GsoDatagrams { get; private set; }

    /// <summary>GSO sends the kernel refused (EMSGSIZE or EINVAL: segment above the route's MTU; EIO: no offload), whose datagrams then went one by one.</summary>
    public long GsoRefused { get; private set; }

    /// <summary>
    /// How long a destination whose GSO send the kernel refused for its size (the path's MTU is
    /// below the segment: EMSGSIZE, EINVAL) gets plain datagrams of that size or more, in one
    /// sendmmsg, before GSO is tried again (the path may grow back). Without the pause every batch
    /// to it tried GSO, was refused and went one sendmsg a datagram: on an IPv6 path of 1280 bytes
    /// a review counted 1,255 refused sendmmsg calls and 38,346 sendmsg in 3 s, 30% of a core.
    /// </summary>
    private const long GsoPauseMilliseconds = 1_000;

    /// <summary>Destinations paused at once; beyond that the one whose pause ends first makes room.</summary>
    private const int MaxGsoPaused = 8;

    private readonly GsoPause[] _gsoPaused = new GsoPause[MaxGsoPaused];
    private int _gsoPausedCount;

    private record struct GsoPause(UdpEndpoint Endpoint, int SegmentSize, long Until);

    /// <summary>GSO sends to a destination refused for their size since the socket opened (see <see cref="GsoRefused"/>); each pauses GSO to it for a second.</summary>
    public long GsoPauses { get; private set; }

    /// <summary>Whether <paramref name="first"/>'s run goes as plain datagrams: its destination refused GSO for this size or less within the last second. One compare while nothing is paused.</summary>
    private bool IsGsoPaused(PacketBuffer first)
    {
        if (_gsoPausedCount == 0)
        {
            return false;
        }
        for (int i = 0; i < _gsoPausedCount; i++)
        {
            ref GsoPause pause = ref _gsoPaused[i];
            if (pause.Endpoint == first.Endpoint)
            {
                if (Environment.TickCount64 < pause.Until)
                {
                    return first.Length >= pause.SegmentSize;
                }
                _gsoPaused[i] = _gsoPaused[--_gsoPausedCount]; // over: GSO is tried again
                return false;
            }
        }
        return false;
    }

    /// <summary>The kernel refused a GSO send of <paramref name="first"/>'s run for its size: plain datagrams to its destination for a while.</summary>
    private void PauseGso(PacketBuffer first)
    {
        GsoPauses++;
        var pause = new GsoPause(first.Endpoint, first.Length, Environment.TickCount64 + GsoPauseMilliseconds);
        int slot = -1;
        for (int i = 0; i < _gsoPausedCount; i++)
        {
            if (_gsoPaused[i].Endpoint == first.Endpoint)
            {
                slot = i;
                break;
            }
        }
        if (slot < 0 && _gsoPausedCount < MaxGsoPaused)
        {
            slot = _gsoPausedCount++;
        }
        if (slot < 0)
        {
            slot = 0;
            for (int i = 1; i < MaxGsoPaused; i++)
            {
                if (_gsoPaused[i].Until < _gsoPaused[slot].Until)
                {
                    slot = i;
                }
            }
        }
        _gsoPaused[slot] = pause;
    }

    /// <summary>errno that turned GSO off (EIO: the route cannot offload checksums), 0 while on.</summary>
    public int GsoDisabledErrno { get; private set; }

    /// <summary>
    /// How many datagrams from <paramref name="start"/> may go in one GSO send: they follow each other,
    /// have the same endpoint, the same ECN codepoint and the same length, except that the last may
    /// be shorter (it then ends the run, since the kernel cuts at every gso_size bytes); at most
    /// <paramref name="maxSegments"/> of them and <see cref="MaxGsoBytes"/> together. 1 means a plain send.
    /// </summary>
    internal static int GsoGroupLength(ReadOnlySpan<PacketBuffer> datagrams, int start, int maxSegments)
    {
        PacketBuffer first = datagrams[start];
        int size = first.Length;
        if (size == 0)
        {
            return 1; // gso_size 0 means no segmentation at all
        }
        int ecn = (int)first.Ecn & 0b11;
        UdpEndpoint endpoint = first.Endpoint;
        int count = 1;
        int total = size;
        while (count < maxSegments && start + count < datagrams.Length)
        {
            PacketBuffer next = datagrams[start + count];
            int length = next.Length;
            if (((int)next.Ecn & 0b11) != ecn || length > size || length == 0
                || total + length > MaxGsoBytes || next.Endpoint != endpoint || next.LocalAddress != first.LocalAddress)
            {
                break;
            }
            count++;
            total += length;
            if (length < size)
            {
                break;
            }
        }
        return count;
    }

    /// <summary>
    /// getsockopt(UDP_SEGMENT) answers on kernels that know the option (4.18+); older ones say
    /// ENOPROTOOPT and would silently ignore the cmsg, sending one oversized datagram, so GSO stays off
    /// there (wireguard-go's supportsUDPOffload does the same test).
    /// </summary>
    private static bool KernelHasGso(int fd)
    {
        int value = 0;
        socklen_t length = sizeof(int);
        return LibC.getsockopt(fd, Socket.SOL_UDP, Socket.UDP_SEGMENT, &value, &length) == 0;
    }

    /// <summary>
    /// Errors with which the kernel refuses a GSO send that would go through as separate datagrams:
    /// EIO (udp_send_skb: the route has no checksum offload or uses xfrm; wireguard-go's
    /// errShouldDisableUDPGSO; GSO is then turned off for good), EMSGSIZE (Linux 6.18 for gso_size plus
    /// headers above the route's MTU, tested in UdpGsoGroLimitsTests) or EINVAL (the same in
    /// udp_send_skb of older kernels, or too many segments): the datagrams then go one by one.
    /// </summary>
    private static bool IsGsoRefusal(int errno) => errno == LibC.EIO || errno == LibC.EINVAL || errno == LibC.EMSGSIZE;

    private void DisableGso(int errno)
    {
        GsoEnabled = false;
        GsoDisabledErrno = errno;
    }

    /// <summary>
    /// Sends the datagrams of the prepared GSO message <paramref name="slot"/> one sendmsg each (same
    /// endpoint, same ECN cmsg, no UDP_SEGMENT); returns how many the kernel took.
    /// </summary>
    private int SendOneByOne(int fd, int slot, Span<int> unsent)
    {
        int first = _sendFirst[slot];
        msghdr* header = _send.Header(slot);
        iovec* iov = header->msg_iov;
        int count = (int)header->msg_iovlen;
        header->msg_controllen = (uint)(_ecnControlSpace + _sendSourceSpace[slot]); // the ECN and source cmsgs come first; drop UDP_SEGMENT
        header->msg_iovlen = 1;
        int sent = 0;
        for (int i = 0; i < count; i++)
        {
            if (_sendStalled)
            {
                SendDropped += count - i; // see SendPrepared: no second wait in one batch
                MarkUnsent(unsent, first + i, count - i, LastSendErrno);
                break;
            }
            header->msg_iov = iov + i;
            int stalls = 0;
            while (true)
            {
                if (Socket.sendmsg(fd, header, LibC.MSG_DONTWAIT) >= 0)
                {
                    sent++;
                    break;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno == LibC.EINTR)
                {
                    continue;
                }
                if (errno == LibC.EAGAIN || errno == LibC.ENOBUFS)
                {
                    if (++stalls <= SendAttempts
                        && DescriptorWait.Wait(fd, LibC.POLLOUT, -1, SendWaitMs, out _) == DescriptorWait.Outcome.Ready)
                    {
                        continue;
                    }
                    SendDropped++;
                    MarkUnsent(unsent, first + i, 1, errno);
                    LastSendErrno = errno;
                    _sendStalled = true;
                    SendStalls++;
                    break;
                }
                if (IsSourceRefusal(errno) && _sendSourceSpace[slot] > 0)
                {
                    // Its source address is gone: this and the rest of the run from the kernel's choice.
                    header->msg_controllen = (uint)_ecnControlSpace;
                    ForgetSource(slot);
                    continue;
                }
                if (IsSocketLost(errno))
                {
                    throw new UdpSocketException($"sending UDP datagrams failed: {Errno.Describe(errno)}", errno);
                }
                SendErrors++;
                MarkUnsent(unsent, first + i, 1, errno);
                LastSendErrno = errno;
                break;
            }
        }
        return sent;
    }
}
