using System.Runtime.InteropServices;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// Tells when the peer of a connected unix stream socket has closed it, while a request waits for
/// its answer: one epoll set of the sockets being watched (<see cref="Watch"/>), read by a
/// dedicated thread that blocks until one hangs up, so a request costs two epoll_ctl calls and an
/// idle server nothing. Each socket is watched for EPOLLHUP and EPOLLERR only, once (EPOLLONESHOT).
/// Not EPOLLRDHUP: a client that shut down only its writing side (`nc -N`, socat at the end of its
/// input) still reads the reply, and its socket reports EPOLLRDHUP, never EPOLLHUP (unix_poll
/// reports a hang-up once both directions are shut down, as closing the peer does). Nothing is
/// read, so a request the client sent behind the watched one stays queued.
/// </summary>
public sealed unsafe class HangUpWatcher : IDisposable
{
    /// <summary>The wake eventfd's key; watches count from 1.</summary>
    private const ulong WakeId = 0;

    private readonly SafeFileDescriptorHandle _epoll;
    private readonly WakeEvent _wake;
    private readonly Thread _thread;
    private readonly Lock _gate = new();
    private readonly Dictionary<ulong, HangUpWatch> _watches = [];
    private ulong _lastId;
    private int _disposed;

    /// <summary>Creates the epoll set and starts the thread.</summary>
    /// <exception cref="IOException">The epoll set or its wake eventfd could not be made (EMFILE); the message says why.</exception>
    public HangUpWatcher()
    {
        int fd = LibC.epoll_create1(LibC.EPOLL_CLOEXEC);
        if (fd < 0)
        {
            throw new IOException($"hang-up watcher: creating its epoll set failed: {Errno.Describe(LibC.errno)}");
        }
        _epoll = new SafeFileDescriptorHandle(fd);
        try
        {
            _wake = new WakeEvent(static errno => new IOException($"hang-up watcher: creating its wake-up eventfd failed: {Errno.Describe(errno)}"));
            var wake = new epoll_event { events = LibC.EPOLLIN };
            wake.data.u64 = WakeId;
            if (LibC.epoll_ctl(fd, LibC.EPOLL_CTL_ADD, _wake.Handle.Fd, &wake) < 0)
            {
                int errno = LibC.errno;
                _wake.Dispose();
                throw new IOException($"hang-up watcher: adding its wake-up eventfd failed: {Errno.Describe(errno)}");
            }
        }
        catch
        {
            _epoll.Dispose();
            throw;
        }
        _thread = new Thread(Run) { IsBackground = true, Name = "hang-up-watcher" };
        _thread.Start();
    }

    /// <summary>
    /// Watches <paramref name="socket"/> until the watch is disposed; a socket whose peer is already
    /// gone is signalled at once.
    /// </summary>
    /// <exception cref="IOException">epoll refused the socket (ENOMEM, ENOSPC past max_user_watches).</exception>
    /// <exception cref="ObjectDisposedException">The watcher or the socket is disposed.</exception>
    public HangUpWatch Watch(SafeHandle socket)
    {
        bool socketAdded = false, epollAdded = false, watching = false;
        HangUpWatch watch;
        lock (_gate)
        {
            watch = new HangUpWatch(this, socket, ++_lastId);
        }
        try
        {
            socket.DangerousAddRef(ref socketAdded);
            _epoll.DangerousAddRef(ref epollAdded);
            lock (_gate)
            {
                _watches.Add(watch.Id, watch);
            }
            // Events 0: epoll reports EPOLLHUP and EPOLLERR whatever is asked, and nothing else.
            var hangUp = new epoll_event { events = LibC.EPOLLONESHOT };
            hangUp.data.u64 = watch.Id;
            if (LibC.epoll_ctl(_epoll.Fd, LibC.EPOLL_CTL_ADD, (int)socket.DangerousGetHandle(), &hangUp) < 0)
            {
                int errno = LibC.errno;
                throw new IOException($"hang-up watcher: watching a socket failed: {Errno.Describe(errno)}");
            }
            watching = true;
            return watch;
        }
        finally
        {
            if (epollAdded)
            {
                _epoll.DangerousRelease();
            }
            if (!watching)
            {
                lock (_gate)
                {
                    _watches.Remove(watch.Id);
                }
                if (socketAdded)
                {
                    socket.DangerousRelease();
                }
            }
        }
    }

    /// <summary>Takes <paramref name="watch"/> out of the set and releases its socket; once.</summary>
    internal void Unwatch(HangUpWatch watch)
    {
        lock (_gate)
        {
            if (!_watches.Remove(watch.Id))
            {
                return;
            }
        }
        bool epollAdded = false;
        try
        {
            _epoll.DangerousAddRef(ref epollAdded);
            _ = LibC.epoll_ctl(_epoll.Fd, LibC.EPOLL_CTL_DEL, (int)watch.Socket.DangerousGetHandle(), null);
        }
        catch (ObjectDisposedException)
        {
            // The watcher is disposed, and its epoll set with everything in it.
        }
        finally
        {
            if (epollAdded)
            {
                _epoll.DangerousRelease();
            }
            watch.Socket.DangerousRelease();
        }
    }

    private void Run()
    {
        const int Capacity = 16;
        epoll_event* events = stackalloc epoll_event[Capacity];
        while (true)
        {
            int ready = Epoll.epoll_wait(_epoll.Fd, events, Capacity, -1);
            if (ready < 0)
            {
                if (Marshal.GetLastPInvokeError() == LibC.EINTR)
                {
                    continue; // the runtime signals threads (GC suspension); just wait again
                }
                return; // EBADF, EFAULT, EINVAL: not with the set this thread owns; watches then wait unsignalled
            }
            for (int i = 0; i < ready; i++)
            {
                ulong id = events[i].data.u64;
                if (id == WakeId)
                {
                    return;
                }
                HangUpWatch? watch;
                lock (_gate)
                {
                    _watches.TryGetValue(id, out watch);
                }
                watch?.Signal(); // absent: disposed meanwhile, its request over
            }
        }
    }

    /// <summary>Stops the thread and closes the set; watches not yet disposed keep their socket's reference until they are.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _wake.Signal();
        _thread.Join();
        _wake.Dispose();
        _epoll.Dispose();
    }
}
