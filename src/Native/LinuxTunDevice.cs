using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// A Linux TUN device (IFF_TUN | IFF_NO_PI: every read and write is one bare IP packet; with
/// <see cref="TunDeviceOptions.Offloads"/> also IFF_VNET_HDR, see LinuxTunDevice.Offload.cs).
///
/// Threading: reads (<see cref="TryReadBatch"/>, <see cref="ReadBatch"/>) are made one at a time,
/// by one thread or by several that serialise them; <see cref="WaitReadable"/>, <see cref="WriteBatch"/>
/// (one batch at a time), <see cref="WakeReader"/> and <see cref="Dispose"/> may be called from any
/// thread. The device is created in the network namespace of the thread that constructs it, and
/// stays there; later calls may come from any thread. A non-persistent device disappears when the
/// descriptor is closed, i.e. when this object is disposed (after any blocked call has returned).
/// </summary>
public sealed unsafe partial class LinuxTunDevice : ITunDevice
{
    private readonly SafeFileDescriptorHandle _fd;
    private readonly WakeEvent _wake;
    private readonly WakeEvent _kick; // see KickReader
    private readonly OffloadState? _offload;
    // WriteBatch is called by the socket reader thread (what it decrypts) and by the TunWriter; the
    // write scratch (virtio header, coalescing state) is shared, so one writer at a time.
    private readonly Lock _writeGate = new();
    private long _writeErrors;

    /// <summary>Creates the device (or attaches to a persistent one of that name), sets the MTU and brings it up.</summary>
    /// <exception cref="TunDeviceException">With a message meant for the user.</exception>
    public LinuxTunDevice(TunDeviceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string requested = options.Name ?? string.Empty;
        string? invalid = TunErrors.ValidateName(requested);
        if (invalid is not null)
        {
            throw new TunDeviceException(invalid);
        }

        // O_NONBLOCK: TryReadBatch drains the queue until EAGAIN, never blocking; WaitReadable polls.
        int fd;
        fixed (byte* path = "/dev/net/tun\0"u8)
        {
            fd = LibC.open(path, LibC.O_RDWR | LibC.O_CLOEXEC | LibC.O_NONBLOCK);
        }
        if (fd < 0)
        {
            int errno = LibC.errno;
            throw new TunDeviceException(TunErrors.OpenFailed(errno), errno);
        }
        _fd = new SafeFileDescriptorHandle(fd);
        try
        {
            If.ifreq request = default;
            Encoding.UTF8.GetBytes(requested, new Span<byte>(request.ifr_name, If.IFNAMSIZ));
            request.ifr_flags = (short)(IfTun.IFF_TUN | IfTun.IFF_NO_PI | (options.Offloads ? IfTun.IFF_VNET_HDR : 0));
            int result = LibC.ioctl(fd, IfTun.TUNSETIFF, &request);
            if (result < 0 && options.Offloads && LibC.errno == LibC.EINVAL)
            {
                // A kernel (or persistent device) that refuses IFF_VNET_HDR: run without offloads.
                request.ifr_flags = IfTun.IFF_TUN | IfTun.IFF_NO_PI;
                result = LibC.ioctl(fd, IfTun.TUNSETIFF, &request);
            }
            if (result < 0)
            {
                int errno = LibC.errno;
                throw new TunDeviceException(TunErrors.SetIffFailed(requested, errno), errno);
            }
            // The kernel writes the final name back (tun%d -> tun0); set first, so errors name it.
            Name = Marshal.PtrToStringUTF8((nint)request.ifr_name) ?? requested;
            Index = NetworkInterfaceControl.GetIndex(Name);
            if ((request.ifr_flags & IfTun.IFF_VNET_HDR) != 0)
            {
                Offloads = EnableOffloads(fd);
                _offload = new OffloadState
                {
                    CoalesceTcp = true,
                    CoalesceUdp = options.UdpCoalescing && (Offloads & TunOffloads.Uso) != 0,
                };
            }

            if (options.Mtu is int mtu)
            {
                NetworkInterfaceControl.SetMtu(Name, mtu);
            }
            Mtu = NetworkInterfaceControl.GetMtu(Name);
            if (options.BringUp)
            {
                NetworkInterfaceControl.SetUp(Name);
            }
            _wake = new WakeEvent(EventFdFailed);
            _kick = new WakeEvent(EventFdFailed);
        }
        catch
        {
            _fd.Dispose();
            _wake?.Dispose();
            _kick?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A second object on the same interface: a duplicate of this descriptor (the same open TUN file,
    /// attached to the interface whatever it is called now), with wake-ups and read state of its own.
    /// For a tunnel rebuilt while a reader thread of the old one may still be in a call on this
    /// object: that thread keeps this one (its wake-up stays signalled; once this one is disposed,
    /// the descriptor closes when the thread lets go), the new tunnel's readers use the duplicate.
    /// Opening the interface by name instead is refused while this descriptor is open ("already in
    /// use"). The MTU is the interface's now.
    /// </summary>
    /// <exception cref="TunDeviceException">With a message meant for the user.</exception>
    public LinuxTunDevice Duplicate()
    {
        var fd = _fd.TryDuplicate(out int errno)
            ?? throw new TunDeviceException($"TUN device {Name}: duplicating its descriptor failed: {Errno.Describe(errno)}", errno);
        return new LinuxTunDevice(this, fd);
    }

    private LinuxTunDevice(LinuxTunDevice original, SafeFileDescriptorHandle fd)
    {
        _fd = fd;
        Name = original.Name;
        Index = original.Index;
        Offloads = original.Offloads;
        if (original._offload is { } offload)
        {
            _offload = new OffloadState { CoalesceTcp = offload.CoalesceTcp, CoalesceUdp = offload.CoalesceUdp };
        }
        try
        {
            Mtu = NetworkInterfaceControl.GetMtu(Index, out _);
            _wake = new WakeEvent(EventFdFailed);
            _kick = new WakeEvent(EventFdFailed);
        }
        catch
        {
            _fd.Dispose();
            _wake?.Dispose();
            _kick?.Dispose();
            throw;
        }
    }

    /// <summary>The interface's name when it was created or attached; it may be renamed since (see <see cref="Index"/>).</summary>
    public string Name { get; }

    /// <summary>
    /// The interface's index, which a rename (<c>ip link set NAME name NEW</c>) keeps: what follows the
    /// interface after it (<see cref="NetworkInterfaceControl.GetMtu(int, out string)"/>), as wireguard-go
    /// matches its link messages by index.
    /// </summary>
    public int Index { get; }

    /// <summary>The offloads in use (None without <see cref="TunDeviceOptions.Offloads"/> or when the kernel refused IFF_VNET_HDR).</summary>
    public TunOffloads Offloads { get; }

    public int Mtu { get; }

    private TunDeviceException EventFdFailed(int errno) =>
        new($"TUN device {Name}: cannot create its wake-up eventfd: {Errno.Describe(errno)}", errno);

    /// <summary>The TUN descriptor, for callers that need it; still owned by this object.</summary>
    public SafeFileDescriptorHandle Handle => _fd;

    /// <summary>Packets the kernel refused in <see cref="WriteBatch"/> (malformed, device down).</summary>
    public long WriteErrors => Interlocked.Read(ref _writeErrors);

    /// <summary>The errno of the last refused write, for the log.</summary>
    public int LastWriteErrno { get; private set; }

    /// <summary>
    /// <see cref="WaitReadable"/> then <see cref="TryReadBatch"/> until something is read: blocks until at
    /// least one packet is read, and returns 0 once woken for stop. For callers with one reader.
    /// </summary>
    public int ReadBatch(Span<PacketBuffer> buffers)
    {
        if (buffers.Length == 0)
        {
            return 0;
        }
        while (WaitReadable(-1))
        {
            int count = TryReadBatch(buffers);
            if (count > 0)
            {
                return count;
            }
            // Spurious readiness (another reader took it, or it was dropped): wait again.
        }
        return 0;
    }

    public bool HasPendingPackets => _offload is not null && _offload.Segmenter.HasPending;

    public bool WaitReadable(int timeoutMs)
    {
        if (HasPendingPackets)
        {
            return true; // segments of the last super-packet come first, without poll
        }
        return DescriptorWait.WaitReadable(_fd, _wake, _kick, timeoutMs) switch
        {
            DescriptorWait.Outcome.Ready or DescriptorWait.Outcome.Kicked => true,
            DescriptorWait.Outcome.Invalid => throw new TunDeviceException($"TUN device {Name}: descriptor is no longer valid"),
            _ => false,
        };
    }

    public int TryReadBatch(Span<PacketBuffer> buffers)
    {
        if (buffers.Length == 0)
        {
            return 0;
        }
        bool fdAdded = false;
        try
        {
            _fd.DangerousAddRef(ref fdAdded);
            return _offload is null ? ReadAvailable(_fd.Fd, buffers) : ReadAvailableWithHeader(_fd.Fd, buffers);
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

    private int ReadAvailable(int fd, Span<PacketBuffer> buffers)
    {
        int count = 0;
        while (count < buffers.Length)
        {
            PacketBuffer buffer = buffers[count];
            byte* start = BufferAddress(buffer) + PacketBuffer.Headroom;
            // One byte more than a packet may have (the tailroom has room): the TUN driver copies what
            // fits and a longer packet would otherwise pass on cut to the buffer. Dropped and counted,
            // as the offload path drops a packet longer than the buffers.
            long read = LibC.read(fd, start, buffer.MaxPacketLength + 1);
            if (read > buffer.MaxPacketLength)
            {
                _readDropped++;
                continue;
            }
            if (read >= 0)
            {
                buffer.SetData(PacketBuffer.Headroom, (int)read);
                buffer.Endpoint = default;
                count++;
                continue;
            }
            if (RetryRead(LibC.errno))
            {
                continue;
            }
            break;
        }
        return count;
    }

    /// <summary>After a failed read: true to retry (EINTR), false when the queue is empty (EAGAIN); throws otherwise.</summary>
    private bool RetryRead(int errno)
    {
        if (errno == LibC.EAGAIN)
        {
            return false;
        }
        if (errno == LibC.EINTR)
        {
            return true;
        }
        throw new TunDeviceException(errno == LibC.EBADFD
            ? $"TUN device {Name} is gone (deleted, or its network namespace removed)"
            : $"reading from TUN device {Name} failed: {Errno.Describe(errno)}", errno);
    }

    public void WriteBatch(ReadOnlySpan<PacketBuffer> packets)
    {
        lock (_writeGate)
        {
            WriteBatchLocked(packets);
        }
    }

    private void WriteBatchLocked(ReadOnlySpan<PacketBuffer> packets)
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            int fd = _fd.Fd;
            if (_offload is not null)
            {
                WriteWithHeader(fd, packets);
                return;
            }
            // One write per packet: without IFF_VNET_HDR the TUN driver takes exactly one packet per call.
            for (int i = 0; i < packets.Length; i++)
            {
                PacketBuffer packet = packets[i];
                byte* start = BufferAddress(packet) + packet.Offset;
                while (true)
                {
                    long written = LibC.write(fd, start, packet.Length);
                    if (written >= 0)
                    {
                        break;
                    }
                    int errno = LibC.errno;
                    if (errno == LibC.EINTR)
                    {
                        continue;
                    }
                    CountWriteError(errno);
                    break;
                }
            }
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    /// <summary>Throws for a device that is gone; counts any other refusal (the packet is skipped).</summary>
    private void CountWriteError(int errno)
    {
        if (errno == LibC.EBADFD)
        {
            throw new TunDeviceException($"TUN device {Name} is gone (deleted, or its network namespace removed)", errno);
        }
        if (errno == LibC.EBADF)
        {
            throw new TunDeviceException($"writing to TUN device {Name} failed: {Errno.Describe(errno)}", errno);
        }
        // EINVAL (malformed packet), EIO (link down), ENOMEM, EAGAIN: skip this packet.
        Interlocked.Increment(ref _writeErrors);
        LastWriteErrno = errno;
    }

    /// <summary>
    /// Whether the descriptor is still attached to an interface (TUNGETIFF: EBADFD once the interface
    /// is deleted or its network namespace removed). An interface moved to another network namespace
    /// stays attached, although no interface of its index is in this one any more.
    /// </summary>
    public bool IsAttached()
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            If.ifreq request = default;
            return LibC.ioctl(_fd.Fd, IfTun.TUNGETIFF, &request) >= 0 || LibC.errno != LibC.EBADFD;
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
    /// TUNSETPERSIST: a persistent interface (with its addresses and routes) outlives this descriptor,
    /// so a tunnel can close the device and open it again by name without losing them; cleared, the
    /// interface goes with the last descriptor again.
    /// </summary>
    /// <exception cref="TunDeviceException">With a message meant for the user.</exception>
    public void SetPersistent(bool persistent)
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            if (LibC.ioctl(_fd.Fd, IfTun.TUNSETPERSIST, (void*)(persistent ? 1 : 0)) < 0)
            {
                int errno = LibC.errno;
                throw new TunDeviceException($"TUN device {Name}: {(persistent ? "making it persistent" : "clearing its persistence")} (TUNSETPERSIST) failed: {Errno.Describe(errno)}", errno);
            }
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    public void WakeReader() => _wake.Signal();

    public void KickReader() => _kick.Signal();

    /// <summary>
    /// Once the reader woken by <see cref="WakeReader"/> has ended: clears the wake-up (sticky until
    /// now) and the kick, so a new reader waits on this device again. A tunnel rebuilt on the same
    /// device uses it instead of closing and reopening the device, which let another process take
    /// the interface name in between. Only while no thread waits on the device.
    /// </summary>
    public void RearmAfterStop()
    {
        _wake.Clear();
        _kick.Clear();
    }

    public void Dispose()
    {
        // Wake first so a blocked reader lets go of its reference; the descriptor closes when it has.
        _wake.Signal();
        _fd.Dispose();
        _wake.Dispose();
        _kick.Dispose();
    }

    /// <summary>Packet buffers live on the pinned object heap (PacketBufferPool), so their address is stable.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static byte* BufferAddress(PacketBuffer buffer) =>
        (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(buffer.Memory));
}
