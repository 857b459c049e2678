using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// An eventfd that a reader polls next to its descriptor, because close() does not wake a thread
/// blocked in read(). Used two ways. As the stop wake it is signalled once and never cleared: a
/// wake means "stop", and every later wait returns at once. As the kick (another thread left packets
/// in the device object that poll cannot see) the reader that wakes up clears it.
/// </summary>
internal sealed class WakeEvent : IDisposable
{
    /// <param name="failure">The owner's exception for an eventfd that cannot be made (EMFILE), from its errno.</param>
    public WakeEvent(Func<int, Exception> failure)
    {
        int fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        if (fd < 0)
        {
            throw failure(LibC.errno);
        }
        Handle = new SafeFileDescriptorHandle(fd);
    }

    public SafeFileDescriptorHandle Handle { get; }

    // Set before the eventfd is written, reset by Clear: what a wait whose poll returned before the
    // Signal (a reader preempted between poll and read) checks, without a system call.
    private volatile bool _signalled;

    /// <summary>Whether <see cref="Signal"/> was called since the last <see cref="Clear"/>.</summary>
    public bool IsSignalled => _signalled;

    public unsafe void Signal()
    {
        _signalled = true;
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

    /// <summary>Resets the counter (for the kick): a wait polls as before until the next Signal.</summary>
    public unsafe void Clear()
    {
        _signalled = false;
        bool added = false;
        try
        {
            Handle.DangerousAddRef(ref added);
            ulong value;
            // EAGAIN when it was not signalled: nothing to clear.
            _ = LibC.read(Handle.Fd, &value, sizeof(ulong));
        }
        catch (ObjectDisposedException)
        {
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
