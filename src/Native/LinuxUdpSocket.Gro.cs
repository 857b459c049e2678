using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// UDP GRO on receive (<c>UDP_GRO</c>, Linux 5.0): with the option set, the kernel may deliver
/// several datagrams of one flow as one read, with a <c>UDP_GRO</c> cmsg giving their size
/// (gso_size; the last may be shorter). That happens when the device's GRO coalesced them, and on
/// loopback (and veth) when the sender used GSO: the large datagram is then never cut at all
/// (udp_unexpected_gso lets it through to a GRO socket). A socket without UDP_GRO gets them cut.
///
/// ECN: the kernel only coalesces datagrams whose IP headers agree in everything but length, id and
/// checksum: inet_gro_receive flushes on a different TOS byte, ipv6_gro_receive on a different
/// traffic class (the 0x0FF00000 bits of the first word), and a GSO send has one TOS for all its
/// segments. So one read has one ECN codepoint, the one in its IP_TOS / IPV6_TCLASS cmsg, and every
/// datagram split from it gets that codepoint.
///
/// A read may be up to 64 KiB, larger than a pooled buffer, so with GRO on the batch reads into
/// the socket's own 64 KiB slots and the datagrams are copied out into the caller's buffers (a
/// single datagram larger than those into a large buffer, see LinuxUdpSocket.Oversize.cs). What
/// does not fit in the caller's span stays for the next read, which hands it out before reading more
/// (<see cref="WaitReadable"/> says true at once while some is left).
/// </summary>
public sealed unsafe partial class LinuxUdpSocket
{
    /// <summary>True when UDP_GRO is on for this socket (the option asked for it and the kernel took it).</summary>
    public bool GroEnabled => _groSlots is not null;

    /// <summary>Reads that held two or more coalesced datagrams.</summary>
    public long GroReads { get; private set; }

    /// <summary>Datagrams that arrived inside such reads.</summary>
    public long GroDatagrams { get; private set; }

    private static bool TryEnableGro(int fd)
    {
        int on = 1;
        return LibC.setsockopt(fd, Socket.SOL_UDP, Socket.UDP_GRO, &on, sizeof(int)) == 0;
    }

    /// <summary>One recvmmsg into the GRO slots, then as many datagrams as fit into <paramref name="buffers"/>.</summary>
    /// <param name="full">True when the recvmmsg filled every message it asked for (more may be queued).</param>
    private int ReceiveCoalesced(int fd, Span<PacketBuffer> buffers, out bool full)
    {
        MessageBatch batch = _receive;
        // Each read holds one datagram or more: no more reads than the caller has buffers for.
        int count = Math.Min(buffers.Length, batch.Capacity);
        for (int i = 0; i < count; i++)
        {
            msghdr* header = batch.Header(i);
            header->msg_namelen = SizeOfSockaddrIn6;
            header->msg_controllen = (uint)_receiveControlRoom;
            header->msg_flags = 0;
        }
        GroReceiveSlots slots = _groSlots!;
        int reads = ReceiveMessages(fd, count);
        full = reads == count;
        slots.Received(reads);
        return slots.Drain(buffers, this);
    }

    /// <summary>
    /// The receive slots of a GRO socket (one 64 KiB slot per batch message, linked to the message's
    /// iovec once, on the pinned object heap like <see cref="MessageBatch"/>) and the position of the
    /// next datagram to hand out.
    /// </summary>
    private sealed class GroReceiveSlots
    {
        /// <summary>The largest UDP payload (a coalesced read stays below 64 KiB, see udp_gro_receive_segment).</summary>
        public const int SlotBytes = 65536;

        private readonly MessageBatch _batch;
        private readonly byte[] _memory;
        private readonly byte* _base;

        private int _received; // reads in the slots
        private int _next; // next read to open

        // The open read: its data, length and segment size, the next segment's offset and how many are left.
        private byte* _data;
        private int _length;
        private int _segment;
        private int _offset;
        private int _segmentsLeft;
        private UdpEndpoint _endpoint;
        private UdpEndpoint _local;
        private Ecn _ecn;

        public GroReceiveSlots(MessageBatch batch)
        {
            _batch = batch;
            _memory = GC.AllocateUninitializedArray<byte>(batch.Capacity * SlotBytes, pinned: true);
            _base = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_memory));
            for (int i = 0; i < batch.Capacity; i++)
            {
                batch.Iov[i].iov_base = _base + (long)i * SlotBytes;
                batch.Iov[i].iov_len = SlotBytes;
            }
        }

        /// <summary>Datagrams received and not handed out yet.</summary>
        public bool HasPending => _segmentsLeft > 0 || _next < _received;

        public void Received(int reads)
        {
            _received = reads;
            _next = 0;
            _segmentsLeft = 0;
        }

        /// <summary>Copies the next datagrams into <paramref name="buffers"/> in arrival order; returns how many.</summary>
        public int Drain(Span<PacketBuffer> buffers, LinuxUdpSocket socket)
        {
            int filled = 0;
            while (filled < buffers.Length)
            {
                if (_segmentsLeft == 0 && !Open(socket))
                {
                    break;
                }
                int size = Math.Min(_segment, _length - _offset);
                if (size > buffers[filled].MaxPacketLength && !socket.TryTakeOversize(size, ref buffers[filled]))
                {
                    if (filled > 0)
                    {
                        // No large buffer free now: this pass's packets hold them until it hands them
                        // on. The datagram stays in its slot for the next pass (HasPending).
                        break;
                    }
                    // None free with nothing in this pass: a consumer holds them all; dropped.
                    _segmentsLeft--;
                    socket.ReceiveTruncated++;
                    _offset += size;
                    continue;
                }
                _segmentsLeft--;
                PacketBuffer buffer = buffers[filled];
                buffer.SetData(PacketBuffer.Headroom, size);
                // Deliberate copy of each segment out of the coalesced GRO area (up to 64 KiB) into its
                // own pooled buffer: every datagram is decrypted in place and handed to a different
                // owner (its peer actor, then the TUN writer) with its own lifetime and headroom, so
                // segments cannot share one buffer without reference counting a 64 KiB block until its
                // last segment is written out; and the GRO area is reused by the next recvmmsg. The copy
                // is one memcpy per datagram, small beside the ChaCha20-Poly1305 pass over the same bytes.
                new ReadOnlySpan<byte>(_data + _offset, size).CopyTo(buffer.Data);
                buffer.Endpoint = _endpoint;
                buffer.LocalAddress = _local;
                buffer.Ecn = _ecn;
                _offset += size;
                filled++;
            }
            return filled;
        }

        /// <summary>Opens the next read that was not truncated (neither its data nor its control data); false when none is left.</summary>
        private bool Open(LinuxUdpSocket socket)
        {
            while (_next < _received)
            {
                int i = _next++;
                msghdr* header = _batch.Header(i);
                if ((header->msg_flags & LibC.MSG_TRUNC) != 0)
                {
                    socket.ReceiveTruncated++;
                    continue;
                }
                if (socket.ControlWasCut(header))
                {
                    continue; // its segment size may be missing: see LinuxUdpSocket.ControlTruncated.cs
                }
                _length = (int)_batch.Messages[i].msg_len;
                _ecn = ReadControl(header, out int segment, out _local);
                socket.NoteArrivedAt(_local);
                _segment = segment > 0 && segment < _length ? segment : _length;
                // A zero-length datagram is still one datagram.
                _segmentsLeft = _length == 0 ? 1 : (_length + _segment - 1) / _segment;
                _offset = 0;
                _data = _base + (long)i * SlotBytes;
                _endpoint = ReadEndpoint(_batch.Name(i));
                if (_segmentsLeft > 1)
                {
                    socket.GroReads++;
                    socket.GroDatagrams += _segmentsLeft;
                }
                return true;
            }
            return false;
        }
    }
}
