using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// The send path of <see cref="LinuxUdpSocket"/>: sendmmsg of a batch, grouped into UDP_SEGMENT (GSO)
/// sends of one destination, source and ECN codepoint each, the source address each datagram leaves
/// from (IP_PKTINFO / IPV6_PKTINFO) and which errors lose one datagram rather than the socket.
/// </summary>
public sealed unsafe partial class LinuxUdpSocket
{
    public int SendBatch(ReadOnlySpan<PacketBuffer> datagrams) => SendBatch(datagrams, default);

    public int SendBatch(ReadOnlySpan<PacketBuffer> datagrams, Span<int> unsent)
    {
        if (!unsent.IsEmpty && unsent.Length < datagrams.Length)
        {
            throw new ArgumentException($"{unsent.Length} errno slots for {datagrams.Length} datagrams", nameof(unsent));
        }
        lock (_sendGate)
        {
            return SendBatchLocked(datagrams, unsent);
        }
    }

    private int SendBatchLocked(ReadOnlySpan<PacketBuffer> datagrams, Span<int> unsent)
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            int fd = _fd.Fd;
            int sent = 0;
            int next = 0;
            MessageBatch batch = _send;
            _sendStalled = false;
            while (next < datagrams.Length)
            {
                if (_sendStalled)
                {
                    SendDropped += datagrams.Length - next; // see SendPrepared: no second wait per batch
                    MarkUnsent(unsent, next, datagrams.Length - next, LastSendErrno);
                    break;
                }
                // Messages and iovecs share the batch's capacity: a GSO message uses one iovec per
                // datagram, so the iovecs run out first and bound the datagrams per call.
                int slots = 0;
                int iovecs = 0;
                while (next < datagrams.Length && iovecs < batch.Capacity)
                {
                    PacketBuffer first = datagrams[next];
                    if (!IsIPv6 && !first.Endpoint.IsIPv4)
                    {
                        MarkUnsent(unsent, next, 1, LibC.EAFNOSUPPORT);
                        next++;
                        SendDropped++; // an IPv6 destination on an IPv4-only socket
                        continue;
                    }
                    int group = GsoEnabled && !IsGsoPaused(first) ? GsoGroupLength(datagrams, next, Math.Min(MaxGsoSegments, batch.Capacity - iovecs)) : 1;
                    PrepareSend(slots, iovecs, datagrams.Slice(next, group));
                    _sendSegments[slots] = group;
                    _sendFirst[slots] = next;
                    slots++;
                    iovecs += group;
                    next += group;
                }
                sent += SendPrepared(fd, slots, unsent, datagrams);
            }
            return sent;
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Fills message <paramref name="slot"/>: the group's common endpoint and ECN cmsg, one iovec per
    /// datagram starting at <paramref name="firstIovec"/>, and a UDP_SEGMENT cmsg when it holds more
    /// than one (the group was formed by <see cref="GsoGroupLength"/>: same endpoint, same codepoint).
    /// </summary>
    private void PrepareSend(int slot, int firstIovec, ReadOnlySpan<PacketBuffer> group)
    {
        MessageBatch batch = _send;
        PacketBuffer first = group[0];
        byte* name = batch.Name(slot);
        UdpEndpoint endpoint = first.Endpoint;
        ushort port = endpoint.Port;
        msghdr* header = batch.Header(slot);
        int level, type;
        if (IsIPv6)
        {
            // sockaddr_in6: family, port (network order), flowinfo 0, address, scope_id (a link-local
            // destination's interface; 0 for any other).
            *(ushort*)name = (ushort)LibC.AF_INET6;
            name[2] = (byte)(port >> 8);
            name[3] = (byte)port;
            *(uint*)(name + 4) = 0;
            endpoint.WriteIPv6(new Span<byte>(name + 8, 16));
            *(uint*)(name + 24) = endpoint.ScopeId;
            header->msg_namelen = SizeOfSockaddrIn6;
        }
        else
        {
            *(ushort*)name = (ushort)LibC.AF_INET;
            name[2] = (byte)(port >> 8);
            name[3] = (byte)port;
            endpoint.WriteIPv4(new Span<byte>(name + 4, 4));
            *(ulong*)(name + 8) = 0; // sin_zero
            header->msg_namelen = SizeOfSockaddrIn;
        }
        // IPv4 and IPv4-mapped destinations take IP_TOS: the kernel ignores IPV6_TCLASS for mapped
        // ones on a dual-stack socket (ECN.md). Only the ECN bits: the outer DSCP stays 0 (RFC 6040 section 4.1).
        if (endpoint.IsIPv4)
        {
            level = SOL_IP;
            type = IP_TOS;
        }
        else
        {
            level = SOL_IPV6;
            type = IPV6_TCLASS;
        }
        cmsghdr* control = (cmsghdr*)header->msg_control;
        control->cmsg_len = (uint)_ecnControlLength;
        control->cmsg_level = level;
        control->cmsg_type = type;
        *(int*)Socket.CmsgData(control) = (int)first.Ecn & 0b11;
        UdpEndpoint source = first.LocalAddress;
        if ((Volatile.Read(ref _goneSource) is { } gone && gone.Value == source) || !IsConfirmed(source))
        {
            source = default;
        }
        int sourceSpace = WriteSource((byte*)control + _ecnControlSpace, endpoint, source);
        _sendSourceSpace[slot] = sourceSpace;
        _sendSource[slot] = source;
        int controlLength = _ecnControlSpace + sourceSpace;
        if (group.Length > 1)
        {
            controlLength += WriteSegment((byte*)control + controlLength, first.Length);
        }
        header->msg_controllen = (uint)controlLength;
        header->msg_flags = 0;

        iovec* iov = batch.Iov + firstIovec;
        header->msg_iov = iov;
        header->msg_iovlen = group.Length;
        for (int i = 0; i < group.Length; i++)
        {
            PacketBuffer datagram = group[i];
            iov[i].iov_base = LinuxTunDevice.BufferAddress(datagram) + datagram.Offset;
            iov[i].iov_len = datagram.Length;
        }
    }

    /// <summary>
    /// Writes the cmsg that sends from <paramref name="local"/> (IP_PKTINFO's ipi_spec_dst for an
    /// IPv4 or IPv4-mapped destination, as IP_TOS; IPV6_PKTINFO otherwise) at <paramref name="at"/>
    /// and returns its room; none (0) when there is no local address or its family is not the
    /// destination's. The interface stays 0 but for a link-local source: the route picks it.
    /// </summary>
    private static int WriteSource(byte* at, UdpEndpoint destination, UdpEndpoint local)
    {
        if (local.IsNone || local.IsIPv4 != destination.IsIPv4)
        {
            return 0;
        }
        cmsghdr* source = (cmsghdr*)at;
        if (destination.IsIPv4)
        {
            source->cmsg_len = (uint)Socket.CmsgLen(SizeOfInPktinfo);
            source->cmsg_level = SOL_IP;
            source->cmsg_type = IP_PKTINFO;
            byte* data = Socket.CmsgData(source);
            *(int*)data = 0; // ipi_ifindex
            local.WriteIPv4(new Span<byte>(data + 4, 4)); // ipi_spec_dst: the source
            *(uint*)(data + 8) = 0; // ipi_addr: ignored on send
            return Socket.CmsgSpace(SizeOfInPktinfo);
        }
        source->cmsg_len = (uint)Socket.CmsgLen(SizeOfIn6Pktinfo);
        source->cmsg_level = SOL_IPV6;
        source->cmsg_type = IPV6_PKTINFO;
        byte* data6 = Socket.CmsgData(source);
        local.WriteIPv6(new Span<byte>(data6, 16));
        *(uint*)(data6 + 16) = local.ScopeId;
        return Socket.CmsgSpace(SizeOfIn6Pktinfo);
    }

    /// <summary>Writes a UDP_SEGMENT cmsg of <paramref name="size"/> at <paramref name="at"/> and returns its room.</summary>
    private int WriteSegment(byte* at, int size)
    {
        // udp_cmsg_send wants cmsg_len == CMSG_LEN(sizeof(__u16)) exactly.
        cmsghdr* segment = (cmsghdr*)at;
        segment->cmsg_len = (uint)_segmentControlLength;
        segment->cmsg_level = Socket.SOL_UDP;
        segment->cmsg_type = Socket.UDP_SEGMENT;
        *(ushort*)Socket.CmsgData(segment) = (ushort)size;
        return _segmentControlSpace;
    }

    /// <summary>
    /// Takes the source cmsg out of prepared message <paramref name="slot"/> (its local address is
    /// gone, see <see cref="IsSourceRefusal"/>), keeping the ECN and UDP_SEGMENT ones, so the kernel
    /// picks the source, as wireguard-go clears its sticky source; later sends from that address skip
    /// it (<c>_goneSource</c>). False when the message had none.
    /// </summary>
    private bool DropSource(int slot)
    {
        int sourceSpace = _sendSourceSpace[slot];
        if (sourceSpace == 0)
        {
            return false;
        }
        msghdr* header = _send.Header(slot);
        byte* control = (byte*)header->msg_control;
        int controlLength = (int)header->msg_controllen;
        int after = _ecnControlSpace + sourceSpace;
        if (controlLength > after)
        {
            // A UDP_SEGMENT cmsg follows: move it up.
            Buffer.MemoryCopy(control + after, control + _ecnControlSpace, MessageBatch.ControlSlot - _ecnControlSpace, controlLength - after);
        }
        header->msg_controllen = (uint)(controlLength - sourceSpace);
        ForgetSource(slot);
        return true;
    }

    private void ForgetSource(int slot)
    {
        _sendSourceSpace[slot] = 0;
        Volatile.Write(ref _goneSource, new StrongBox<UdpEndpoint>(_sendSource[slot]));
        SourcesDropped++;
    }

    /// <summary>A datagram arrived at <paramref name="local"/>: if it was the address refused as a source, it is back.</summary>
    private void NoteArrivedAt(UdpEndpoint local)
    {
        Confirm(local);
        if (Volatile.Read(ref _goneSource) is { } gone && gone.Value == local)
        {
            Interlocked.CompareExchange(ref _goneSource, null, gone); // not a newer mark DropSource set since the read
        }
    }

    /// <summary>
    /// How the kernel refuses a source address that is no longer the host's: EINVAL for IPv6
    /// (ip6_datagram_send_ctl), ENETUNREACH for IPv4 (the output route lookup fails before it checks
    /// the source), EADDRNOTAVAIL for a bound source, ENODEV for an IPv6 source whose interface was
    /// deleted (a link-local peer's link unplugged or re-created: IPV6_PKTINFO names its index). A real
    /// refusal of the destination comes again on the retry without the source, and is then reported
    /// as usual.
    /// </summary>
    private static bool IsSourceRefusal(int errno) =>
        errno == LibC.EINVAL || errno == LibC.ENETUNREACH || errno == LibC.EADDRNOTAVAIL || errno == LibC.ENODEV;

    /// <summary>
    /// Notes <paramref name="errno"/> in the caller's slot of each of <paramref name="length"/>
    /// datagrams from <paramref name="first"/> on: the kernel did not take them (no slots asked for: nothing).
    /// </summary>
    private static void MarkUnsent(Span<int> unsent, int first, int length, int errno)
    {
        if (!unsent.IsEmpty)
        {
            unsent.Slice(first, length).Fill(errno);
        }
    }

    /// <summary>Notes <paramref name="errno"/> for every datagram of prepared send message <paramref name="slot"/>.</summary>
    private void MarkUnsent(Span<int> unsent, int slot, int errno) => MarkUnsent(unsent, _sendFirst[slot], _sendSegments[slot], errno);

    /// <summary>Sends messages [0, count), resuming after partial sends; returns how many datagrams the kernel took.</summary>
    private int SendPrepared(int fd, int count, Span<int> unsent, ReadOnlySpan<PacketBuffer> batchDatagrams)
    {
        int done = 0;
        int sent = 0;
        int stalls = 0;
        while (done < count)
        {
            if (_sendStalled)
            {
                // The buffer stayed full for a whole wait: drop the rest of this batch at once instead
                // of waiting again per message. SendBatch runs on the actor that owns this socket; a
                // stall per message would block it (and every packet queued behind) for seconds.
                for (int i = done; i < count; i++)
                {
                    SendDropped += _sendSegments[i];
                    MarkUnsent(unsent, i, LastSendErrno);
                }
                break;
            }
            int result;
            if (_useMmsg)
            {
                result = Socket.sendmmsg(fd, &_send.Messages[done], (uint)(count - done), LibC.MSG_DONTWAIT);
            }
            else
            {
                result = Socket.sendmsg(fd, _send.Header(done), LibC.MSG_DONTWAIT) >= 0 ? 1 : -1;
            }
            if (result > 0)
            {
                for (int i = done; i < done + result; i++)
                {
                    int segments = _sendSegments[i];
                    sent += segments;
                    if (segments > 1)
                    {
                        GsoSends++;
                        GsoDatagrams += segments;
                    }
                }
                done += result;
                stalls = 0;
                continue;
            }
            int errno = result < 0 ? Marshal.GetLastPInvokeError() : LibC.EAGAIN;
            if (errno == LibC.EINTR)
            {
                continue;
            }
            int datagrams = _sendSegments[done];
            // The local address it was to leave from is gone: again, from the kernel's choice. An
            // EINVAL of a GSO send may be the GSO refusal instead: that goes one by one first,
            // keeping the source (SendOneByOne drops it if a single datagram is refused for it).
            if (IsSourceRefusal(errno) && (datagrams == 1 || !IsGsoRefusal(errno)) && DropSource(done))
            {
                continue;
            }
            if (datagrams > 1 && IsGsoRefusal(errno))
            {
                // The route cannot take this GSO send; its datagrams go one by one (the kernel
                // fragments them if they exceed the MTU, as it did before GSO).
                GsoRefused++;
                LastSendErrno = errno;
                if (errno == LibC.EIO)
                {
                    DisableGso(errno);
                }
                else
                {
                    PauseGso(batchDatagrams[_sendFirst[done]]);
                }
                sent += SendOneByOne(fd, done, unsent);
                done++;
                stalls = 0;
                continue;
            }
            if (errno == LibC.EAGAIN || errno == LibC.ENOBUFS)
            {
                // Socket buffer full: wait briefly for room; a buffer that stays full drops the head
                // message and (via _sendStalled) the rest of the batch.
                if (++stalls <= SendAttempts
                    && DescriptorWait.Wait(fd, LibC.POLLOUT, -1, SendWaitMs, out _) == DescriptorWait.Outcome.Ready)
                {
                    continue;
                }
                SendDropped += datagrams;
                MarkUnsent(unsent, done, errno);
                LastSendErrno = errno;
                done++;
                stalls = 0;
                _sendStalled = true;
                SendStalls++;
                continue;
            }
            if (IsSocketLost(errno))
            {
                throw new UdpSocketException($"sending UDP datagrams failed: {Errno.Describe(errno)}", errno);
            }
            // sendmmsg reports the failing message when it is first in the call: skip it, keep the rest.
            SendErrors += datagrams;
            MarkUnsent(unsent, done, errno);
            LastSendErrno = errno;
            done++;
        }
        return sent;
    }

    /// <summary>
    /// The errnos that mean the descriptor itself cannot send (closed under us, not a socket, our own
    /// pointers wrong): the socket is lost and the tunnel must stop. Every other errno refuses one
    /// message, skipped and counted in <see cref="SendErrors"/> with the rest of the batch sent, as
    /// wireguard-go logs a failed send and goes on. The refusals met so far (ENETUNREACH,
    /// EHOSTUNREACH, EMSGSIZE, EINVAL, EACCES, EPERM, EADDRNOTAVAIL, ECONNREFUSED, ENETDOWN, ENODEV)
    /// were a list whose every gap (ENODEV from a deleted link-local interface, ENOMEM under memory
    /// pressure) stopped the tunnel for one datagram.
    /// </summary>
    private static bool IsSocketLost(int errno) =>
        errno == LibC.EBADF || errno == LibC.ENOTSOCK || errno == LibC.EFAULT;
}
