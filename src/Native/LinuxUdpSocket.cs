using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// A UDP socket that moves batches of datagrams with recvmmsg/sendmmsg, each datagram with its own
/// endpoint and ECN codepoint (carried in IP_TOS / IPV6_TCLASS control messages, see ECN.md), with
/// UDP GSO on send (LinuxUdpSocket.Gso.cs) and UDP GRO on receive (LinuxUdpSocket.Gro.cs) where the
/// kernel has them.
///
/// Threading: receives (<see cref="TryReceiveBatch"/>, <see cref="ReceiveBatch"/>) are made one at a
/// time, by one thread or by several that serialise them; <see cref="SendBatch"/> (one batch at a
/// time) has its own preallocated native structures. <see cref="WaitReadable"/>,
/// <see cref="WakeReceiver"/> and <see cref="Dispose"/> may be called from any thread.
/// </summary>
public sealed unsafe partial class LinuxUdpSocket : IUdpBatchSocket
{
    private const int SOL_IP = 0;
    private const int IP_TOS = 1;
    private const int SOL_IPV6 = 41;
    private const int IPV6_TCLASS = 67;
    // The local address a datagram arrived at, and the one to send from (linux/in.h, linux/in6.h).
    private const int IP_PKTINFO = 8;
    private const int IP_MTU_DISCOVER = 10;
    private const int IP_PMTUDISC_DONT = 0;
    private const int IPV6_RECVPKTINFO = 49;
    private const int IPV6_PKTINFO = 50;
    private const int SizeOfInPktinfo = 12; // ipi_ifindex, ipi_spec_dst, ipi_addr
    private const int SizeOfIn6Pktinfo = 20; // ipi6_addr, ipi6_ifindex
    private const int SizeOfSockaddrIn = 16;
    private const int SizeOfSockaddrIn6 = 28;

    /// <summary>How long a send waits for room in the socket buffer (EAGAIN) before giving up on a datagram.</summary>
    private const int SendWaitMs = 100;

    /// <summary>Waits without progress before the datagram at the head of the batch is dropped.</summary>
    private const int SendAttempts = 3;

    // Set when a send in the current SendBatch gave up on a full buffer; the rest of that batch is dropped.
    private bool _sendStalled;

    private readonly SafeFileDescriptorHandle _fd;
    private readonly WakeEvent _wake;
    private readonly WakeEvent _kick; // see KickReceiver
    private readonly MessageBatch _receive;
    private readonly MessageBatch _send;
    // SendBatch is called by both reader threads (which send what they seal) and by SocketIO; the
    // send batch's headers and the stall flag are shared, so one sender at a time. Uncontended
    // almost always: a lock per batch, not per datagram.
    private readonly Lock _sendGate = new();
    private readonly bool _useMmsg;
    private readonly int _ecnControlLength = Socket.CmsgLen(sizeof(int));
    private readonly int _ecnControlSpace = Socket.CmsgSpace(sizeof(int));
    private readonly int _segmentControlLength = Socket.CmsgLen(sizeof(ushort));
    private readonly int _segmentControlSpace = Socket.CmsgSpace(sizeof(ushort));

    /// <summary>Per prepared send message: the room its IP_PKTINFO / IPV6_PKTINFO cmsg takes after the ECN one (0: none).</summary>
    private readonly int[] _sendSourceSpace;

    /// <summary>Per prepared send message: the local address it is sent from (when it has a source cmsg).</summary>
    private readonly UdpEndpoint[] _sendSource;

    // The last local address the kernel refused as a source (gone from the host): sends stamped with
    // it go from the kernel's choice at once instead of failing first, until a datagram arrives at
    // that address again. Boxed, so readers on other threads never see half of it.
    private StrongBox<UdpEndpoint>? _goneSource;

    /// <summary>Datagrams per prepared send message (more than one for a GSO send).</summary>
    private readonly int[] _sendSegments;

    /// <summary>Index in the caller's span of each prepared send message's first datagram.</summary>
    private readonly int[] _sendFirst;

    /// <summary>Set when UDP_GRO is on: the receive slots and the datagrams still to hand out.</summary>
    private readonly GroReceiveSlots? _groSlots;

    /// <exception cref="UdpSocketException">With a message meant for the user.</exception>
    public LinuxUdpSocket(UdpBatchSocketOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        int port = options.ListenPort;
        if (port < 0 || port > 65535)
        {
            throw new UdpSocketException($"UDP port {port} is out of range (0 to 65535)");
        }
        if (options.BatchSize < 1 || options.BatchSize > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"batch size {options.BatchSize} must be 1 to 1024 (UIO_MAXIOV)");
        }
        _useMmsg = options.UseMmsg;

        int fd = -1;
        if (options.Family == UdpSocketFamily.DualStack)
        {
            fd = LibC.socket(LibC.AF_INET6, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
            if (fd < 0)
            {
                int errno = LibC.errno;
                // EAFNOSUPPORT: IPv6 disabled at boot (ipv6.disable=1); serve IPv4 only.
                if (errno != LibC.EAFNOSUPPORT)
                {
                    throw new UdpSocketException($"cannot create a UDP socket: {Errno.Describe(errno)}", errno);
                }
            }
        }
        IsIPv6 = fd >= 0;
        if (fd < 0)
        {
            fd = LibC.socket(LibC.AF_INET, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
            if (fd < 0)
            {
                int errno = LibC.errno;
                throw new UdpSocketException($"cannot create a UDP socket: {Errno.Describe(errno)}", errno);
            }
        }
        _fd = new SafeFileDescriptorHandle(fd);
        try
        {
            if (IsIPv6)
            {
                SetOption(fd, SOL_IPV6, LibC.IPV6_V6ONLY, 0, "IPV6_V6ONLY");
            }
            ReceiveBufferSize = SetBufferSize(fd, LibC.SO_RCVBUFFORCE, LibC.SO_RCVBUF, options.ReceiveBufferBytes);
            SendBufferSize = SetBufferSize(fd, LibC.SO_SNDBUFFORCE, LibC.SO_SNDBUF, options.SendBufferBytes);
            // IPv4 datagrams leave without DF, as the kernel's WireGuard sends them (send4: df 0), so
            // a router on a smaller-MTU path fragments them even when its ICMP "fragmentation
            // needed" never comes back (a PMTU black hole). With the default (IP_PMTUDISC_WANT) the
            // kernel set DF on a datagram sent alone but not on a GSO send larger than the route's
            // MTU: bulk traffic went through such a path and the same packets one at a time (a ping,
            // a paced flow) vanished. On the dual-stack socket this governs IPv4-mapped traffic;
            // IPv6 has no DF (its routers never fragment). UdpDontFragmentTests.
            SetOption(fd, SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT, "IP_MTU_DISCOVER");
            // Both on a dual-stack socket: IPv4-mapped traffic reports IP_TOS, IPv6 reports IPV6_TCLASS.
            SetOption(fd, SOL_IP, LibC.IP_RECVTOS, 1, "IP_RECVTOS");
            if (IsIPv6)
            {
                SetOption(fd, SOL_IPV6, LibC.IPV6_RECVTCLASS, 1, "IPV6_RECVTCLASS");
            }
            // The address each datagram arrived at, so replies leave from it (a host with several).
            // On the dual-stack socket IPV6_PKTINFO covers IPv4-mapped traffic too (the mapped
            // address), so IP_PKTINFO, which would add a second cmsg to every such read, stays off.
            if (IsIPv6)
            {
                SetOption(fd, SOL_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
            }
            else
            {
                SetOption(fd, SOL_IP, IP_PKTINFO, 1, "IP_PKTINFO");
            }
            Bind(fd, port);
            _localPort = ReadLocalPort(fd);
            _wake = new WakeEvent(EventFdFailed);
            _kick = new WakeEvent(EventFdFailed);
            _receive = new MessageBatch(options.BatchSize);
            _send = new MessageBatch(options.BatchSize);
            _sendSegments = new int[options.BatchSize];
            _sendFirst = new int[options.BatchSize];
            _sendSourceSpace = new int[options.BatchSize];
            _sendSource = new UdpEndpoint[options.BatchSize];
            GsoEnabled = options.UseGso && KernelHasGso(fd);
            if (options.UseGro && TryEnableGro(fd))
            {
                _groSlots = new GroReceiveSlots(_receive);
            }
        }
        catch
        {
            _fd.Dispose();
            _wake?.Dispose();
            _kick?.Dispose();
            throw;
        }
    }

    /// <summary>The bound port; a <see cref="TakeOver"/> changes it.</summary>
    public int LocalPort => Volatile.Read(ref _localPort);

    private int _localPort;

    /// <summary>True for the dual-stack AF_INET6 socket, false when IPv4 only.</summary>
    public bool IsIPv6 { get; }

    /// <summary>SO_RCVBUF as the kernel reports it (twice the request, for bookkeeping overhead).</summary>
    public int ReceiveBufferSize { get; }

    public int SendBufferSize { get; }

    /// <summary>The descriptor, still owned by this object.</summary>
    public SafeFileDescriptorHandle Handle => _fd;

    /// <summary>Datagrams larger than the caller's buffer and dropped on receive (see LinuxUdpSocket.Oversize.cs).</summary>
    public long ReceiveTruncated { get; private set; }

    /// <summary>
    /// Reads dropped because the kernel cut their control data (MSG_CTRUNC, see
    /// LinuxUdpSocket.ControlTruncated.cs): one per read, however many datagrams a GRO read held.
    /// </summary>
    public long ReceiveControlTruncated { get; private set; }

    /// <summary>
    /// The control room each receive message offers the kernel (<see cref="MessageBatch.ControlSlot"/>);
    /// a test sets less to make the kernel cut the control data (MSG_CTRUNC).
    /// </summary>
    internal int ReceiveControlRoom
    {
        get => _receiveControlRoom;
        set => _receiveControlRoom = Math.Clamp(value, 0, MessageBatch.ControlSlot);
    }

    private int _receiveControlRoom = MessageBatch.ControlSlot;

    /// <summary>Datagrams the kernel refused (ENETUNREACH, EMSGSIZE...), skipped on send.</summary>
    public long SendErrors { get; private set; }

    /// <summary>Send messages whose local source address was gone (EINVAL, ENETUNREACH, EADDRNOTAVAIL) and that went again from the kernel's choice.</summary>
    public long SourcesDropped { get; private set; }

    /// <summary>Datagrams dropped because the socket buffer stayed full, or the endpoint cannot be reached on this family.</summary>
    public long SendDropped { get; private set; }

    /// <summary>
    /// SendBatch calls cut short because the socket buffer stayed full through a wait: the rest of
    /// that batch was dropped (counted in <see cref="SendDropped"/>) instead of waiting per message.
    /// </summary>
    public long SendStalls { get; private set; }

    /// <summary>errno of the last refused datagram, for the log.</summary>
    public int LastSendErrno { get; private set; }

    /// <summary>
    /// <see cref="WaitReadable"/> then <see cref="TryReceiveBatch"/> until something arrives: blocks
    /// until at least one datagram is read, and returns 0 once woken for stop. For callers with one reader.
    /// </summary>
    public int ReceiveBatch(Span<PacketBuffer> buffers)
    {
        if (buffers.Length == 0)
        {
            return 0;
        }
        while (WaitReadable(-1))
        {
            int received = TryReceiveBatch(buffers);
            if (received > 0)
            {
                return received;
            }
        }
        return 0;
    }

    public bool HasPendingDatagrams => _groSlots is not null && _groSlots.HasPending;

    public bool WaitReadable(int timeoutMs)
    {
        if (HasPendingDatagrams)
        {
            return true; // segments left over from an earlier read come first, without poll
        }
        if (_receiveRefused && !PauseAfterRefusedReceive(ref timeoutMs, out bool readable))
        {
            return readable; // see LinuxUdpSocket.ReceiveErrors.cs
        }
        return DescriptorWait.WaitReadable(_fd, _wake, _kick, timeoutMs) switch
        {
            DescriptorWait.Outcome.Ready or DescriptorWait.Outcome.Kicked => true,
            DescriptorWait.Outcome.Invalid => throw new UdpSocketException("UDP socket descriptor is no longer valid"),
            _ => false,
        };
    }

    /// <inheritdoc />
    /// <remarks>When a truncated datagram is dropped, later buffers move forward in
    /// <paramref name="buffers"/> (elements are swapped, none lost), so the first N hold the datagrams.</remarks>
    public int TryReceiveBatch(Span<PacketBuffer> buffers)
    {
        if (buffers.Length == 0)
        {
            return 0;
        }
        bool fdAdded = false;
        try
        {
            _fd.DangerousAddRef(ref fdAdded);
            // The caller's span may be larger than one recvmmsg: read again while the last read came
            // back full (more is likely queued; with 100 peers sending, a larger batch holds more
            // packets of each flow, so fewer and larger TUN writes). A read that came back short
            // emptied the queue, so no read is made just to learn EAGAIN.
            int filled = _groSlots?.Drain(buffers, this) ?? 0; // a GRO read's leftovers first
            bool more = true;
            // Not while datagrams still wait in the GRO slots (a drain that ran out of large
            // buffers, see LinuxUdpSocket.Oversize.cs): the next recvmmsg reuses the slots and
            // would drop them uncounted. They go first on the next call. Nor while a pause is owed
            // after a refused read (LinuxUdpSocket.ReceiveErrors.cs): a partner's polling read
            // would make the call the kernel refuses again, before the reader's wait has paused.
            while (more && filled < buffers.Length && !HasPendingDatagrams && !_receiveRefused)
            {
                filled += _groSlots is not null
                    ? ReceiveCoalesced(_fd.Fd, buffers[filled..], out more)
                    : Receive(_fd.Fd, buffers.Slice(filled, Math.Min(buffers.Length - filled, _receive.Capacity)), out more);
            }
            return filled;
        }
        catch (ObjectDisposedException)
        {
            return 0;
        }
        finally
        {
            if (fdAdded)
            {
                _fd.DangerousRelease();
            }
        }
    }

    /// <param name="full">True when every message of the read was filled (more may be queued).</param>
    private int Receive(int fd, Span<PacketBuffer> buffers, out bool full)
    {
        MessageBatch batch = _receive;
        for (int i = 0; i < buffers.Length; i++)
        {
            PacketBuffer buffer = buffers[i];
            batch.Iov[i].iov_base = LinuxTunDevice.BufferAddress(buffer) + PacketBuffer.Headroom;
            batch.Iov[i].iov_len = buffer.MaxPacketLength;
            msghdr* header = batch.Header(i);
            header->msg_namelen = SizeOfSockaddrIn6; // the kernel shrinks these two to what it wrote
            header->msg_controllen = (uint)_receiveControlRoom;
            header->msg_flags = 0;
        }

        int received = ReceiveMessages(fd, buffers.Length);
        full = received == buffers.Length;

        int delivered = 0;
        for (int i = 0; i < received; i++)
        {
            msghdr* header = batch.Header(i);
            if ((header->msg_flags & LibC.MSG_TRUNC) != 0)
            {
                ReceiveTruncated++; // cut short by the kernel: lost (with GRO, see LinuxUdpSocket.Oversize.cs)
                continue;
            }
            if (ControlWasCut(header))
            {
                continue; // its ECN codepoint or local address may be missing: see LinuxUdpSocket.ControlTruncated.cs
            }
            PacketBuffer buffer = buffers[i];
            buffer.SetData(PacketBuffer.Headroom, (int)batch.Messages[i].msg_len);
            buffer.Endpoint = ReadEndpoint(batch.Name(i));
            buffer.Ecn = ReadControl(header, out _, out UdpEndpoint local);
            buffer.LocalAddress = local;
            NoteArrivedAt(local);
            if (delivered != i)
            {
                (buffers[delivered], buffers[i]) = (buffers[i], buffers[delivered]);
            }
            delivered++;
        }
        return delivered;
    }

    /// <summary>recvmmsg (or recvmsg in a loop) into the first <paramref name="count"/> prepared
    /// messages of the receive batch, without waiting; returns how many arrived (0 on an error that
    /// leaves the socket usable, see LinuxUdpSocket.ReceiveErrors.cs).</summary>
    private int ReceiveMessages(int fd, int count)
    {
        MessageBatch batch = _receive;
        int received;
        if (_useMmsg)
        {
            received = Socket.recvmmsg(fd, batch.Messages, (uint)count, LibC.MSG_DONTWAIT, null);
            if (received < 0)
            {
                CheckReceiveError(Marshal.GetLastPInvokeError());
                return 0;
            }
            return received;
        }
        received = 0;
        while (received < count)
        {
            nint length = Socket.recvmsg(fd, batch.Header(received), LibC.MSG_DONTWAIT);
            if (length < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (received == 0)
                {
                    CheckReceiveError(errno);
                }
                break;
            }
            batch.Messages[received].msg_len = (uint)length;
            received++;
        }
        return received;
    }

    private static UdpEndpoint ReadEndpoint(byte* name)
    {
        ushort family = *(ushort*)name;
        ushort port = (ushort)((name[2] << 8) | name[3]);
        if (family == (ushort)LibC.AF_INET6)
        {
            return UdpEndpoint.FromIPv6(new ReadOnlySpan<byte>(name + 8, 16), port, *(uint*)(name + 24)); // sin6_addr, sin6_scope_id
        }
        return UdpEndpoint.FromIPv4(new ReadOnlySpan<byte>(name + 4, 4), port); // sin_addr
    }

    private static UdpSocketException EventFdFailed(int errno) =>
        new($"cannot create a UDP socket: its wake-up eventfd failed: {Errno.Describe(errno)}", errno);

    /// <summary>
    /// The ECN bits of the IP_TOS (1 byte) or IPV6_TCLASS (int) control message (Not-ECT if none),
    /// the UDP_GRO segment size (int; 0 if none, i.e. the read holds one datagram) and the local
    /// address the datagram arrived at (IP_PKTINFO's ipi_spec_dst, IPV6_PKTINFO's ipi6_addr with its
    /// interface for a link-local one; none if neither came).
    /// Each value is read only from a control message long enough to hold it (the kernel's always
    /// are; a short one is skipped rather than read past its end).
    /// </summary>
    internal static Ecn ReadControl(msghdr* header, out int groSegmentSize, out UdpEndpoint local)
    {
        groSegmentSize = 0;
        local = default;
        Ecn ecn = Ecn.NotEct;
        byte* cursor = (byte*)header->msg_control;
        byte* end = cursor + (uint)header->msg_controllen;
        while (cursor + sizeof(cmsghdr) <= end)
        {
            cmsghdr* message = (cmsghdr*)cursor;
            uint length = message->cmsg_len;
            if (length < (uint)sizeof(cmsghdr) || cursor + length > end)
            {
                break;
            }
            byte* data = Socket.CmsgData(message);
            uint dataLength = length - (uint)Socket.CmsgLen(0);
            if (message->cmsg_level == SOL_IP && message->cmsg_type == IP_TOS && dataLength >= 1)
            {
                ecn = (Ecn)(data[0] & 0b11);
            }
            else if (message->cmsg_level == SOL_IPV6 && message->cmsg_type == IPV6_TCLASS && dataLength >= sizeof(int))
            {
                ecn = (Ecn)(*(int*)data & 0b11);
            }
            else if (message->cmsg_level == Socket.SOL_UDP && message->cmsg_type == Socket.UDP_GRO && dataLength >= sizeof(int))
            {
                groSegmentSize = *(int*)data;
            }
            // IP_PKTINFO on the IPv4-only socket; the dual-stack one gets IPV6_PKTINFO, with the
            // mapped address for IPv4 traffic.
            else if (message->cmsg_level == SOL_IP && message->cmsg_type == IP_PKTINFO && dataLength >= SizeOfInPktinfo)
            {
                local = UdpEndpoint.FromIPv4(new ReadOnlySpan<byte>(data + 4, 4), 0); // ipi_spec_dst
            }
            else if (message->cmsg_level == SOL_IPV6 && message->cmsg_type == IPV6_PKTINFO && dataLength >= SizeOfIn6Pktinfo)
            {
                var address = new ReadOnlySpan<byte>(data, 16);
                bool linkLocal = address[0] == 0xfe && (address[1] & 0xc0) == 0x80;
                local = UdpEndpoint.FromIPv6(address, 0, linkLocal ? *(uint*)(data + 16) : 0);
            }
            cursor += Socket.CmsgAlign((int)length);
        }
        return ecn;
    }

    public void WakeReceiver() => _wake.Signal();

    public void KickReceiver() => _kick.Signal();

    /// <summary>
    /// Once the receiver woken by <see cref="WakeReceiver"/> has ended: clears the wake-up (sticky
    /// until now) and the kick, so a new receiver waits on this socket again. A tunnel rebuilt on
    /// the same socket uses it instead of closing and binding the port again, which let another
    /// process take the port in between. Only while no thread waits on the socket.
    /// </summary>
    public void RearmAfterStop()
    {
        _wake.Clear();
        _kick.Clear();
    }

    public void Dispose()
    {
        _wake.Signal();
        _fd.Dispose();
        _wake.Dispose();
        _kick.Dispose();
    }

    private static void SetOption(int fd, int level, int name, int value, string what)
    {
        if (LibC.setsockopt(fd, level, name, &value, sizeof(int)) < 0)
        {
            int errno = LibC.errno;
            throw new UdpSocketException($"setting {what} on the UDP socket failed: {Errno.Describe(errno)}", errno);
        }
    }

    /// <summary>The FORCE variant (CAP_NET_ADMIN) may exceed net.core.[rw]mem_max; otherwise the kernel caps the wish.</summary>
    private static int SetBufferSize(int fd, int forced, int normal, int bytes)
    {
        if (LibC.setsockopt(fd, LibC.SOL_SOCKET, forced, &bytes, sizeof(int)) < 0)
        {
            _ = LibC.setsockopt(fd, LibC.SOL_SOCKET, normal, &bytes, sizeof(int));
        }
        int actual = 0;
        socklen_t length = sizeof(int);
        _ = LibC.getsockopt(fd, LibC.SOL_SOCKET, normal, &actual, &length);
        return actual;
    }

    private void Bind(int fd, int port)
    {
        byte* address = stackalloc byte[SizeOfSockaddrIn6];
        new Span<byte>(address, SizeOfSockaddrIn6).Clear(); // the any-address, :: or 0.0.0.0
        *(ushort*)address = IsIPv6 ? (ushort)LibC.AF_INET6 : (ushort)LibC.AF_INET;
        address[2] = (byte)(port >> 8);
        address[3] = (byte)port;
        int length = IsIPv6 ? SizeOfSockaddrIn6 : SizeOfSockaddrIn;
        if (LibC.bind(fd, (sockaddr*)address, (uint)length) < 0)
        {
            int errno = LibC.errno;
            string message = errno == LibC.EADDRINUSE ? $"UDP port {port} is already in use"
                : errno == LibC.EACCES ? $"binding UDP port {port} needs CAP_NET_BIND_SERVICE (ports below 1024; run as root)"
                : $"binding UDP port {port} failed: {Errno.Describe(errno)}";
            throw new UdpSocketException(message, errno);
        }
    }

    private static int ReadLocalPort(int fd)
    {
        byte* address = stackalloc byte[SizeOfSockaddrIn6];
        socklen_t length = SizeOfSockaddrIn6;
        if (LibC.getsockname(fd, (sockaddr*)address, &length) < 0)
        {
            int errno = LibC.errno;
            throw new UdpSocketException($"getsockname on the UDP socket failed: {Errno.Describe(errno)}", errno);
        }
        return (address[2] << 8) | address[3];
    }
}
