using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Offload;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// IFF_VNET_HDR offloads (the design of wireguard-go's tun/offload_linux.go): every read starts with a
/// virtio_net_hdr. A TSO/USO read is one super-packet of up to 64 KiB, split here into MTU-sized
/// packets (one pooled buffer each); a NEEDS_CSUM read gets its checksum completed. Writes of a run of
/// one TCP flow, or (with USO) of one UDP flow, become one super-packet with a GSO header (one write
/// for up to 64 KiB); any other packet is written with a zeroed header (GSO_NONE, checksum already
/// complete), with writev so the caller's buffer is not copied. A kernel that refuses a super-packet
/// (EINVAL; some LTS kernels did for a while) gets its packets one by one, and no more super-packets
/// of that kind: merging is turned off for the device rather than paid for and refused on every write. The splitting and merging rules are in Engine/Offload.
/// </summary>
public sealed unsafe partial class LinuxTunDevice
{
    /// <summary>Room for the largest read (a 64 KiB super-packet) next to the part a packet buffer takes.</summary>
    private const int ScratchCapacity = 128 * 1024;

    private long _readDropped;
    private long _superPacketsRead;
    private long _superPacketsWritten;
    private long _segmentsCoalesced;

    /// <summary>Reads dropped: malformed or unsupported GSO headers, packets larger than the buffers.</summary>
    public long ReadDropped => Volatile.Read(ref _readDropped);

    /// <summary>TSO/USO super-packets read and split.</summary>
    public long SuperPacketsRead => Volatile.Read(ref _superPacketsRead);

    /// <summary>Coalesced super-packets written, and the packets they carried.</summary>
    public long SuperPacketsWritten => Volatile.Read(ref _superPacketsWritten);

    public long SegmentsCoalesced => Volatile.Read(ref _segmentsCoalesced);

    /// <summary>
    /// Segments of the last super-packet not yet handed out (for the reader thread). The next
    /// read returns them without reading (<see cref="WaitReadable"/> says true at once, even after
    /// <see cref="WakeReader"/>): a stop then takes effect one call later for each span-full still held.
    /// </summary>
    public int PendingSegments => _offload?.Segmenter.PendingSegments ?? 0;

    /// <summary>Whether runs of one UDP flow are merged: asked for, USO taken, and never refused since.</summary>
    public bool UdpCoalescing => _offload?.CoalesceUdp ?? false;

    /// <summary>Whether runs of one TCP flow are merged: with offloads, and never refused since.</summary>
    public bool TcpCoalescing => _offload?.CoalesceTcp ?? false;

    /// <summary>
    /// Tests only: when set, each super-packet is refused as by a kernel that does not take it
    /// (EINVAL) instead of being written. Linux 6.x takes every super-packet this device builds,
    /// so the fallback (segments one by one, merging of that kind turned off) cannot be reached
    /// otherwise.
    /// </summary>
    internal bool RefuseSuperPacketsForTests { get; set; }

    /// <summary>Per-device memory of the offload paths, one part per direction (reader thread, writer thread).</summary>
    private sealed class OffloadState
    {
        // Written by the writer thread only (turned off once), read by anyone.
        public volatile bool CoalesceTcp;
        public volatile bool CoalesceUdp;

        public readonly GsoSegmenter Segmenter = new();
        public readonly byte[] ReadHeader = GC.AllocateArray<byte>(16, pinned: true);
        public readonly byte[] ReadScratch = GC.AllocateArray<byte>(ScratchCapacity, pinned: true);
        public readonly iovec[] ReadIov = GC.AllocateArray<iovec>(3, pinned: true);
        public int PendingLength;

        public readonly byte[] ZeroHeader = GC.AllocateArray<byte>(16, pinned: true);
        public readonly byte[] WriteScratch = GC.AllocateArray<byte>(ScratchCapacity, pinned: true);
        public readonly iovec[] WriteIov = GC.AllocateArray<iovec>(2, pinned: true);
        public bool[] Taken = new bool[256];
        public int[] Members = new int[256];
    }

    /// <summary>Sets the header size and asks for the most offloads the kernel accepts (USO needs Linux 6.2).</summary>
    private TunOffloads EnableOffloads(int fd)
    {
        int size = VirtioNetHeader.Size;
        if (LibC.ioctl(fd, IfTun.TUNSETVNETHDRSZ, &size) < 0)
        {
            int errno = LibC.errno;
            throw new TunDeviceException($"TUN device {Name}: setting the virtio_net_hdr size failed: {Errno.Describe(errno)}", errno);
        }
        // VirtioNetHeader reads and writes the header little-endian; the kernel uses the host's byte
        // order unless told otherwise (right on x86-64 and arm64 either way, not on a big-endian host,
        // where a kernel that cannot be told is refused; on a little-endian one it does not matter).
        int littleEndian = 1;
        if (LibC.ioctl(fd, IfTun.TUNSETVNETLE, &littleEndian) < 0 && !BitConverter.IsLittleEndian)
        {
            int errno = LibC.errno;
            throw new TunDeviceException($"TUN device {Name}: making the virtio_net_hdr little-endian (TUNSETVNETLE) failed: {Errno.Describe(errno)}", errno);
        }
        const uint tso = IfTun.TUN_F_CSUM | IfTun.TUN_F_TSO4 | IfTun.TUN_F_TSO6;
        if (LibC.ioctl(fd, IfTun.TUNSETOFFLOAD, (void*)(nuint)(tso | IfTun.TUN_F_USO4 | IfTun.TUN_F_USO6)) == 0)
        {
            return TunOffloads.VnetHeader | TunOffloads.Checksum | TunOffloads.Tso | TunOffloads.Uso;
        }
        if (LibC.ioctl(fd, IfTun.TUNSETOFFLOAD, (void*)(nuint)tso) == 0)
        {
            return TunOffloads.VnetHeader | TunOffloads.Checksum | TunOffloads.Tso;
        }
        if (LibC.ioctl(fd, IfTun.TUNSETOFFLOAD, (void*)(nuint)IfTun.TUN_F_CSUM) == 0)
        {
            return TunOffloads.VnetHeader | TunOffloads.Checksum;
        }
        return TunOffloads.VnetHeader;
    }

    /// <summary>Hands out pending segments, then reads (without blocking) until EAGAIN or the span is full.</summary>
    private int ReadAvailableWithHeader(int fd, Span<PacketBuffer> buffers)
    {
        OffloadState o = _offload!;
        iovec* iov = (iovec*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(o.ReadIov));
        byte* header = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(o.ReadHeader));
        byte* scratch = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(o.ReadScratch));
        int count = 0;
        while (count < buffers.Length)
        {
            if (o.Segmenter.HasPending)
            {
                count = TakeSegments(o, buffers, count);
                continue;
            }
            PacketBuffer buffer = buffers[count];
            int max = buffer.MaxPacketLength;
            byte* data = BufferAddress(buffer) + PacketBuffer.Headroom;
            // A packet that fits lands in the buffer without a copy; the rest of a super-packet spills
            // into the scratch right after the part the buffer holds.
            iov[0].iov_base = header;
            iov[0].iov_len = (size_t)VirtioNetHeader.Size;
            iov[1].iov_base = data;
            iov[1].iov_len = (size_t)max;
            iov[2].iov_base = scratch + max;
            iov[2].iov_len = (size_t)(ScratchCapacity - max);
            nint read = Uio.readv(fd, iov, 3);
            if (read < 0)
            {
                if (RetryRead(Marshal.GetLastPInvokeError()))
                {
                    continue;
                }
                break;
            }
            int length = (int)read - VirtioNetHeader.Size;
            if (length <= 0 || read >= VirtioNetHeader.Size + ScratchCapacity)
            {
                _readDropped++; // no packet, or possibly truncated
                continue;
            }
            VirtioNetHeader vnet = VirtioNetHeader.Read(o.ReadHeader);
            if (vnet.GsoType == VirtioNetHeader.GsoNone)
            {
                if (length > max || ChecksumOffload.Complete(new Span<byte>(data, length), vnet) != OffloadStatus.Ok)
                {
                    _readDropped++;
                    continue;
                }
                buffer.SetData(PacketBuffer.Headroom, length);
                buffer.Endpoint = default;
                count++;
                continue;
            }
            // Make the super-packet contiguous in the scratch; its segments go to this and later buffers.
            new ReadOnlySpan<byte>(data, Math.Min(length, max)).CopyTo(o.ReadScratch);
            if (o.Segmenter.Begin(o.ReadScratch.AsSpan(0, length), vnet) != OffloadStatus.Ok)
            {
                o.Segmenter.Clear();
                _readDropped++;
                continue;
            }
            o.PendingLength = length;
            _superPacketsRead++;
        }
        return count;
    }

    private int TakeSegments(OffloadState o, Span<PacketBuffer> buffers, int count)
    {
        ReadOnlySpan<byte> super = o.ReadScratch.AsSpan(0, o.PendingLength);
        while (count < buffers.Length && o.Segmenter.HasPending)
        {
            PacketBuffer buffer = buffers[count];
            if (buffer.MaxPacketLength < o.Segmenter.MaxSegmentLength)
            {
                // An MSS above the buffers' size (MTU set above MaxPacketLength): drop the rest.
                _readDropped += o.Segmenter.PendingSegments;
                o.Segmenter.Clear();
                break;
            }
            int length = o.Segmenter.NextSegment(super, buffer.Memory.Slice(PacketBuffer.Headroom, buffer.MaxPacketLength));
            buffer.SetData(PacketBuffer.Headroom, length);
            buffer.Endpoint = default;
            count++;
        }
        return count;
    }

    private void WriteWithHeader(int fd, ReadOnlySpan<PacketBuffer> packets)
    {
        OffloadState o = _offload!;
        byte* scratch = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(o.WriteScratch));
        if (o.Taken.Length < packets.Length)
        {
            // Only when a batch is larger than any before: not per packet.
            o.Taken = new bool[packets.Length];
            o.Members = new int[packets.Length];
        }
        Span<bool> taken = o.Taken.AsSpan(0, packets.Length);
        taken.Clear();
        for (int i = 0; i < packets.Length; i++)
        {
            if (taken[i])
            {
                continue; // already written as part of an earlier super-packet
            }
            // A UDP super-packet needs the kernel to have taken USO (Linux 6.2+), TCP works everywhere.
            bool udp = UdpCoalescer.IsUdp(packets[i].Data);
            int run = !(udp ? o.CoalesceUdp : o.CoalesceTcp) ? 1
                : udp ? UdpCoalescer.FindRun(packets, i, taken, o.Members, ScratchCapacity - VirtioNetHeader.Size)
                : TcpCoalescer.FindRun(packets, i, taken, o.Members, ScratchCapacity - VirtioNetHeader.Size);
            if (run == 1)
            {
                WriteSingle(fd, o, packets[i]);
                continue;
            }
            ReadOnlySpan<int> members = o.Members.AsSpan(0, run);
            int length = udp ? UdpCoalescer.Build(packets, members, o.WriteScratch) : TcpCoalescer.Build(packets, members, o.WriteScratch);
            int errno = RefuseSuperPacketsForTests ? LibC.EINVAL : WriteFully(fd, scratch, length);
            if (errno == 0)
            {
                _superPacketsWritten++;
                _segmentsCoalesced += run;
            }
            else if (errno == LibC.EINVAL)
            {
                // The kernel refused the super-packet: its segments may still be fine one by one,
                // and the next super-packets of this kind would be refused too.
                if (udp)
                {
                    o.CoalesceUdp = false;
                }
                else
                {
                    o.CoalesceTcp = false;
                }
                foreach (int k in members)
                {
                    WriteSingle(fd, o, packets[k]);
                }
            }
            else
            {
                for (int k = 0; k < run; k++)
                {
                    CountWriteError(errno);
                }
            }
        }
    }

    /// <summary>One packet behind a zeroed virtio_net_hdr (GSO_NONE, no NEEDS_CSUM), without copying it.</summary>
    private void WriteSingle(int fd, OffloadState o, PacketBuffer packet)
    {
        iovec* iov = (iovec*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(o.WriteIov));
        iov[0].iov_base = Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(o.ZeroHeader));
        iov[0].iov_len = (size_t)VirtioNetHeader.Size;
        iov[1].iov_base = BufferAddress(packet) + packet.Offset;
        iov[1].iov_len = (size_t)packet.Length;
        while (Uio.writev(fd, iov, 2) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != LibC.EINTR)
            {
                CountWriteError(errno);
                return;
            }
        }
    }

    /// <summary>write(2) retried on EINTR; 0 or the errno.</summary>
    private static int WriteFully(int fd, byte* start, int length)
    {
        while (LibC.write(fd, start, length) < 0)
        {
            int errno = LibC.errno;
            if (errno != LibC.EINTR)
            {
                return errno;
            }
        }
        return 0;
    }
}
