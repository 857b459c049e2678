using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// A netlink socket joined to multicast groups, read by a dedicated thread that blocks until the
/// kernel announces something, then calls <c>onBurst</c> once for the burst it read (also after a
/// lost burst: ENOBUFS, something changed all the same). Each message read is first offered to
/// <c>onMessage</c>, for a caller that needs more than "something changed"; with
/// <c>onlyMatched</c>, a burst none of whose messages it matched is not reported (another
/// interface's address, the tunnel's own route). Nothing runs while nothing changes. The shared
/// part of <see cref="LinkChangeListener"/>, <see cref="AddressChangeListener"/>,
/// <see cref="RouteChangeListener"/> and <see cref="NftablesChangeListener"/>.
/// </summary>
internal sealed unsafe class NetlinkGroupListener : IDisposable
{
    /// <summary>
    /// Looks at one announcement, on the listener's thread: its <c>nlmsg_type</c> and what follows
    /// its header (<paramref name="bodyLength"/> bytes at <paramref name="body"/>). True: it matters.
    /// </summary>
    public delegate bool Message(ushort type, byte* body, long bodyLength);

    private const int BufferSize = 8192;

    private readonly string _what;
    private readonly SafeFileDescriptorHandle _socket;
    private readonly WakeEvent _wake;
    private readonly Message? _onMessage;
    private readonly bool _onlyMatched;
    private readonly Action _onBurst;
    private readonly Action<Exception> _onFailure;
    // A message of the burst being read matched, or announcements were lost (the thread only).
    private bool _matched;
    private readonly Thread _thread;
    private int _disposed;

    /// <summary>Opens and binds the socket, and starts the thread.</summary>
    /// <param name="what">What the listener is, for its error messages ("link change listener").</param>
    /// <param name="protocol">The netlink family (<c>NETLINK_ROUTE</c>, <c>NETLINK_NETFILTER</c>).</param>
    /// <param name="groups">The bind mask of the groups to join.</param>
    /// <param name="groupName">The groups' name, for the message when joining fails.</param>
    /// <param name="threadName">The thread's name.</param>
    /// <param name="onMessage">Offered every message read, before <paramref name="onBurst"/>; null: not needed.</param>
    /// <param name="onBurst">Called on the listener's thread after each burst (with <paramref name="onlyMatched"/>, each burst with a matched message or lost announcements).</param>
    /// <param name="onFailure">Called on the listener's thread if reading fails for good; the listener then stops.</param>
    /// <param name="onlyMatched">Only bursts in which <paramref name="onMessage"/> matched a message, or the kernel dropped announcements (ENOBUFS: what was lost is unknown), are reported.</param>
    /// <exception cref="IOException">The socket could not be opened or bound; the message says why.</exception>
    public NetlinkGroupListener(string what, int protocol, uint groups, string groupName, string threadName, Message? onMessage, Action onBurst, Action<Exception> onFailure,
        bool onlyMatched = false)
    {
        _what = what;
        _onMessage = onMessage;
        _onlyMatched = onlyMatched;
        _onBurst = onBurst;
        _onFailure = onFailure;
        _wake = new WakeEvent(errno => new IOException($"{what}: creating its wake-up eventfd failed: {Errno.Describe(errno)}"));
        int fd = LibC.socket(LibC.AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC | LibC.SOCK_NONBLOCK, protocol);
        if (fd < 0)
        {
            int errno = LibC.errno;
            _wake.Dispose();
            throw new IOException($"{what}: opening a netlink socket failed: {Errno.Describe(errno)}");
        }
        _socket = new SafeFileDescriptorHandle(fd);
        var address = new Netlink.sockaddr_nl { nl_family = (ushort)LibC.AF_NETLINK, nl_groups = groups };
        if (LibC.bind(fd, (sockaddr*)&address, (uint)sizeof(Netlink.sockaddr_nl)) < 0)
        {
            int errno = LibC.errno;
            _socket.Dispose();
            _wake.Dispose();
            throw new IOException($"{what}: joining the {groupName} group failed: {Errno.Describe(errno)}");
        }
        _thread = new Thread(Run) { IsBackground = true, Name = threadName };
        _thread.Start();
    }

    private void Run()
    {
        // Announcements are well under a page each, and a burst is read in as many calls as it takes.
        byte* buffer = stackalloc byte[BufferSize];
        try
        {
            while (true)
            {
                var outcome = DescriptorWait.Wait(_socket.Fd, LibC.POLLIN, _wake.Handle.Fd, -1, out _);
                if (outcome == DescriptorWait.Outcome.Woken)
                {
                    return;
                }
                while (true)
                {
                    long read = (long)LibC.recv(_socket.Fd, buffer, BufferSize, LibC.MSG_DONTWAIT);
                    if (read >= 0)
                    {
                        Offer(buffer, Math.Min(read, BufferSize));
                        continue;
                    }
                    int errno = LibC.errno;
                    if (errno == LibC.EAGAIN || errno == LibC.EINTR)
                    {
                        break;
                    }
                    if (errno != LibC.ENOBUFS)
                    {
                        throw new IOException($"{_what}: reading its netlink socket failed: {Errno.Describe(errno)}");
                    }
                    // ENOBUFS: the kernel dropped messages because the socket was full; something
                    // changed all the same. Keep reading what is left.
                    _matched = true;
                }
                if (_matched || !_onlyMatched)
                {
                    _matched = false;
                    _onBurst();
                }
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

    /// <summary>Offers each message of a datagram (<paramref name="length"/> bytes at <paramref name="data"/>) to the caller's <c>onMessage</c>.</summary>
    private void Offer(byte* data, long length)
    {
        if (_onMessage is null)
        {
            return;
        }
        for (long offset = 0; length - offset >= Netlink.NlMsgHdrSize;)
        {
            uint messageLength = *(uint*)(data + offset);
            if (messageLength < Netlink.NlMsgHdrSize || messageLength > length - offset)
            {
                break; // malformed or cut short: nothing more to read in it
            }
            ushort type = *(ushort*)(data + offset + Netlink.NlMsgTypeOffset);
            _matched |= _onMessage(type, data + offset + Netlink.NlMsgHdrSize, messageLength - Netlink.NlMsgHdrSize);
            offset += Netlink.Align(messageLength);
        }
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
