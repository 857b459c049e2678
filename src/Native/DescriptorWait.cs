using System.Runtime.InteropServices;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>poll(2) on one descriptor plus a stop <see cref="WakeEvent"/> (and a kick), the way every reader here blocks.</summary>
internal static unsafe class DescriptorWait
{
    internal enum Outcome
    {
        /// <summary>The descriptor has the requested events, or an error/hangup condition.</summary>
        Ready,

        /// <summary>The wake event is signalled: stop.</summary>
        Woken,

        /// <summary>The kick event is signalled: packets wait in the device object (the caller clears the kick).</summary>
        Kicked,

        TimedOut,

        /// <summary>The descriptor is not open (POLLNVAL).</summary>
        Invalid,
    }

    /// <summary>
    /// A reader's wait: for <paramref name="fd"/> to be readable, the stop <paramref name="wake"/>
    /// or a <paramref name="kick"/> (cleared here), holding a reference on each handle meanwhile.
    /// Disposed handles count as a stop.
    /// </summary>
    internal static Outcome WaitReadable(SafeFileDescriptorHandle fd, WakeEvent wake, WakeEvent kick, int timeoutMs)
    {
        bool fdAdded = false, wakeAdded = false, kickAdded = false;
        try
        {
            fd.DangerousAddRef(ref fdAdded);
            wake.Handle.DangerousAddRef(ref wakeAdded);
            kick.Handle.DangerousAddRef(ref kickAdded);
            var outcome = Wait(fd.Fd, LibC.POLLIN, wake.Handle.Fd, kick.Handle.Fd, timeoutMs, out short revents);
            // A stop that came after poll returned (the reader was not run meanwhile: a rebuild
            // while its thread was stuck) still wins over the data poll saw: read now, the old
            // reader would take a batch of datagrams meant for the new tunnel, which shares the
            // socket (a handshake answer lost, the Rekey-Timeout of 5 s before the next).
            if (outcome != Outcome.Woken && wake.IsSignalled)
            {
                return Outcome.Woken;
            }
            if (outcome == Outcome.Kicked)
            {
                kick.Clear();
            }
            return outcome == Outcome.Ready && (revents & LibC.POLLNVAL) != 0 ? Outcome.Invalid : outcome;
        }
        catch (ObjectDisposedException)
        {
            return Outcome.Woken; // disposed while stopping: same as a wake
        }
        finally
        {
            if (kickAdded)
            {
                kick.Handle.DangerousRelease();
            }
            if (wakeAdded)
            {
                wake.Handle.DangerousRelease();
            }
            if (fdAdded)
            {
                fd.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// A reader's pause: <paramref name="timeoutMs"/> unless the stop <paramref name="wake"/> or a
    /// <paramref name="kick"/> (cleared here) comes first (TimedOut, Woken or Kicked). Disposed
    /// handles count as a stop.
    /// </summary>
    internal static Outcome Pause(WakeEvent wake, WakeEvent kick, int timeoutMs)
    {
        bool wakeAdded = false, kickAdded = false;
        try
        {
            wake.Handle.DangerousAddRef(ref wakeAdded);
            kick.Handle.DangerousAddRef(ref kickAdded);
            var outcome = Wait(-1, 0, wake.Handle.Fd, kick.Handle.Fd, timeoutMs, out _);
            if (outcome == Outcome.Kicked)
            {
                kick.Clear();
            }
            return outcome;
        }
        catch (ObjectDisposedException)
        {
            return Outcome.Woken;
        }
        finally
        {
            if (kickAdded)
            {
                kick.Handle.DangerousRelease();
            }
            if (wakeAdded)
            {
                wake.Handle.DangerousRelease();
            }
        }
    }

    /// <param name="wakeFd">The stop eventfd, or -1 for none (poll ignores negative descriptors).</param>
    /// <param name="timeoutMs">-1 waits forever.</param>
    internal static Outcome Wait(int fd, short events, int wakeFd, int timeoutMs, out short revents) =>
        Wait(fd, events, wakeFd, -1, timeoutMs, out revents);

    /// <param name="kickFd">The kick eventfd, or -1 for none.</param>
    internal static Outcome Wait(int fd, short events, int wakeFd, int kickFd, int timeoutMs, out short revents)
    {
        pollfd* fds = stackalloc pollfd[3];
        while (true)
        {
            fds[0].fd = fd;
            fds[0].events = events;
            fds[0].revents = 0;
            fds[1].fd = wakeFd;
            fds[1].events = LibC.POLLIN;
            fds[1].revents = 0;
            fds[2].fd = kickFd;
            fds[2].events = LibC.POLLIN;
            fds[2].revents = 0;
            int ready = Poll.poll(fds, 3, timeoutMs);
            if (ready < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == LibC.EINTR)
                {
                    continue; // the runtime signals threads (GC suspension); just wait again
                }
                throw new IOException($"poll failed: {Errno.Describe(errno)}");
            }
            if (ready == 0)
            {
                revents = 0;
                return Outcome.TimedOut;
            }
            // Stop wins over pending data: a woken reader returns 0 even if packets are waiting.
            if (fds[1].revents != 0)
            {
                revents = 0;
                return Outcome.Woken;
            }
            revents = fds[0].revents;
            return revents == 0 && fds[2].revents != 0 ? Outcome.Kicked : Outcome.Ready;
        }
    }
}
