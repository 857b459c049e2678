using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// Owns one Linux file descriptor. Calls that use the descriptor hold a reference
/// (<see cref="SafeHandle.DangerousAddRef"/>), so a concurrent Dispose closes it only after they
/// return and the number cannot be reused underneath a blocked thread.
/// </summary>
public sealed class SafeFileDescriptorHandle : SafeHandle
{
    public SafeFileDescriptorHandle() : base(-1, ownsHandle: true)
    {
    }

    public SafeFileDescriptorHandle(int fd, bool ownsHandle = true) : base(-1, ownsHandle)
    {
        SetHandle(fd);
    }

    public override bool IsInvalid => handle == -1;

    /// <summary>The descriptor number; valid while a reference is held.</summary>
    public int Fd => (int)handle;

    /// <summary>
    /// A second descriptor for the same open file (fcntl F_DUPFD_CLOEXEC: the same file offset,
    /// status flags and socket, close-on-exec), or null with <paramref name="errno"/> set. A reference
    /// is held meanwhile, so a concurrent Dispose cannot close this one underneath.
    /// </summary>
    public SafeFileDescriptorHandle? TryDuplicate(out int errno)
    {
        bool added = false;
        int fd;
        try
        {
            DangerousAddRef(ref added);
            fd = LibC.fcntl(Fd, LibC.F_DUPFD_CLOEXEC, 0);
            errno = fd < 0 ? LibC.errno : 0;
        }
        finally
        {
            if (added)
            {
                DangerousRelease();
            }
        }
        return fd < 0 ? null : new SafeFileDescriptorHandle(fd);
    }

    protected override bool ReleaseHandle()
    {
        // close(2): never retry on EINTR, the descriptor is released either way on Linux.
        return LibC.close((int)handle) == 0;
    }
}
