using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// Tells when a network interface of this network namespace changed (its MTU, state or name):
/// a NETLINK_ROUTE socket joined to the RTMGRP_LINK group, read by a dedicated thread that blocks
/// until the kernel sends a link message, then calls <c>onChange</c> once for the burst it read.
/// The messages are not parsed, but for one thing the state read afterwards cannot tell: that an
/// interface (<c>downWatchIndex</c>, up when the listener starts) went from up to down, also when it
/// is up again by the time the caller looks (<c>ip link set wg0 down; ip link set wg0 up</c>). The caller looks at the rest
/// itself. This is how wireguard-go follows its TUN device's MTU and state
/// (routineNetlinkListener), and unlike polling it costs nothing while nothing changes.
/// </summary>
public sealed unsafe class LinkChangeListener : IDisposable
{
    private readonly SafeFileDescriptorHandle _socket;
    private readonly WakeEvent _wake = new(static errno => new IOException($"link change listener: creating its wake-up eventfd failed: {Errno.Describe(errno)}"));
    private readonly Action _onChange;
    private readonly Action<Exception> _onFailure;
    private readonly int _downWatchIndex;
    private readonly Action? _onDown;
    // The watched interface's IFF_UP in the last announcement read (up when the listener starts).
    private bool _watchedUp = true;
    private readonly Thread _thread;
    private int _disposed;

    /// <summary>Opens and binds the socket, and starts the thread.</summary>
    /// <param name="onChange">Called on the listener's thread after each burst of link messages (also after a lost burst: ENOBUFS).</param>
    /// <param name="onFailure">Called on the listener's thread if reading fails for good; the listener then stops.</param>
    /// <param name="downWatchIndex">The interface whose down announcements <paramref name="onDown"/> hears of (0: none).</param>
    /// <param name="onDown">Called on the listener's thread, before <paramref name="onChange"/>, once for each time that interface was announced down after it was up.</param>
    /// <exception cref="IOException">The netlink socket could not be opened or bound; the message says why.</exception>
    public LinkChangeListener(Action onChange, Action<Exception> onFailure, int downWatchIndex = 0, Action? onDown = null)
    {
        _onChange = onChange;
        _onFailure = onFailure;
        _downWatchIndex = downWatchIndex;
        _onDown = onDown;
        int fd = LibC.socket(LibC.AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC | LibC.SOCK_NONBLOCK, Netlink.NETLINK_ROUTE);
        if (fd < 0)
        {
            int errno = LibC.errno;
            _wake.Dispose();
            throw new IOException($"link change listener: opening a NETLINK_ROUTE socket failed: {Errno.Describe(errno)}");
        }
        _socket = new SafeFileDescriptorHandle(fd);
        var address = new Netlink.sockaddr_nl { nl_family = (ushort)LibC.AF_NETLINK, nl_groups = Netlink.RTMGRP_LINK };
        if (LibC.bind(fd, (sockaddr*)&address, (uint)sizeof(Netlink.sockaddr_nl)) < 0)
        {
            int errno = LibC.errno;
            _socket.Dispose();
            _wake.Dispose();
            throw new IOException($"link change listener: joining the RTMGRP_LINK group failed: {Errno.Describe(errno)}");
        }
        _thread = new Thread(Run) { IsBackground = true, Name = "link-changes" };
        _thread.Start();
    }

    private void Run()
    {
        // Messages are read to empty the socket and scanned only for a down announcement: a link
        // message is well under a page, and a burst is read in as many calls as it takes.
        byte* buffer = stackalloc byte[8192];
        try
        {
            while (true)
            {
                var outcome = DescriptorWait.Wait(_socket.Fd, LibC.POLLIN, _wake.Handle.Fd, -1, out _);
                if (outcome == DescriptorWait.Outcome.Woken)
                {
                    return;
                }
                int downs = 0;
                while (true)
                {
                    long read = (long)LibC.recv(_socket.Fd, buffer, 8192, LibC.MSG_DONTWAIT);
                    if (read >= 0)
                    {
                        downs += _onDown is null ? 0 : CountDowns(buffer, Math.Min(read, 8192));
                        continue;
                    }
                    int errno = LibC.errno;
                    if (errno == LibC.EAGAIN || errno == LibC.EINTR)
                    {
                        break;
                    }
                    if (errno != LibC.ENOBUFS)
                    {
                        throw new IOException($"link change listener: reading the NETLINK_ROUTE socket failed: {Errno.Describe(errno)}");
                    }
                    // ENOBUFS: the kernel dropped messages because the socket was full; something
                    // changed all the same. Keep reading what is left.
                }
                for (; downs > 0; downs--)
                {
                    _onDown!();
                }
                _onChange();
            }
        }
        catch (Exception e)
        {
            if (Volatile.Read(ref _disposed) == 0)
            {
                try
                {
                    _onFailure(e);
                }
                catch
                {
                    // A plain thread: an exception escaping here would end the process.
                }
            }
        }
        finally
        {
            // The thread closes what it reads, so a Dispose from a callback (this thread) never
            // leaves it polling closed descriptor numbers.
            _socket.Dispose();
            _wake.Dispose();
        }
    }

    /// <summary>
    /// How many times the RTM_NEWLINK messages in <paramref name="data"/> take the watched interface
    /// from up to down (an MTU change of a down link is announced without IFF_UP too, and is not one).
    /// </summary>
    private int CountDowns(byte* data, long length)
    {
        int downs = 0;
        for (long offset = 0; length - offset >= Netlink.NlMsgHdrSize;)
        {
            uint messageLength = *(uint*)(data + offset);
            if (messageLength < Netlink.NlMsgHdrSize || messageLength > length - offset)
            {
                break; // malformed or cut short: nothing more to read in it
            }
            if (*(ushort*)(data + offset + Netlink.NlMsgTypeOffset) == Netlink.RTM_NEWLINK && messageLength >= Netlink.NlMsgHdrSize + Netlink.IfInfoMsgSize)
            {
                byte* info = data + offset + Netlink.NlMsgHdrSize;
                if (*(int*)(info + Netlink.IfiIndexOffset) == _downWatchIndex)
                {
                    bool up = (*(uint*)(info + Netlink.IfiFlagsOffset) & (uint)If.IFF_UP) != 0;
                    downs += _watchedUp && !up ? 1 : 0;
                    _watchedUp = up;
                }
            }
            offset += Netlink.Align(messageLength);
        }
        return downs;
    }

    /// <summary>Stops the thread, which closes the socket; waits for it unless called from a callback (on that thread).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _wake.Signal(); // a no-op if the thread ended already and closed it
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }
    }
}
