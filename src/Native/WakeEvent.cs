using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// An eventfd that a reader polls next to its descriptor, because close() does not wake a thread
/// blocked in read(). Once signalled it stays signalled (the counter is never drained): a wake means
/// "stop", and every later wait returns at once.
/// </summary>
internal sealed class WakeEvent : IDisposable
{
    public WakeEvent()
    {
        int fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        if (fd < 0)
        {
            int errno = LibC.errno;
            throw new IOException($"eventfd failed: {Errno.Describe(errno)}");
        }
        Handle = new SafeFileDescriptorHandle(fd);
    }

    public SafeFileDescriptorHandle Handle { get; }

    public unsafe void Signal()
    {
        bool added = false;
        try
        {
            Handle.DangerousAddRef(ref added);
            ulong one = 1;
            // EAGAIN only when the counter would overflow, i.e. it is already signalled.
            _ = LibC.write(Handle.Fd, &one, sizeof(ulong));
        }
        catch (ObjectDisposedException)
        {
            // Already disposed: nothing left to wake.
        }
        finally
        {
            if (added)
            {
                Handle.DangerousRelease();
            }
        }
    }

    public void Dispose() => Handle.Dispose();
}
