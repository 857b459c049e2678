using Tmds.Linux;

namespace Firezone.Actors.Native;

public sealed partial class LinuxUdpSocket
{
    /// <summary>
    /// Moves this socket to the port of <paramref name="replacement"/>, a socket opened with the same
    /// options and already bound (and marked), without stopping anyone who uses this one: the
    /// replacement's open socket is put in this object's descriptor number with dup3(2), atomically,
    /// and the replacement object is disposed (its own number closed). A send or receive in flight
    /// finishes on the old socket; every later one uses the new. A thread blocked in
    /// <see cref="WaitReadable"/> waits on the old socket until it is kicked, which this does. What
    /// still waited in the old socket's receive queue is lost, as when wireguard-go rebinds.
    ///
    /// This is how a new listen port keeps the tunnel, its actors and every peer's session (wg set
    /// listen-port; wireguard-go's BindUpdate). Returns false, and changes and disposes nothing,
    /// when the replacement differs in what the receive and send code rely on (address family,
    /// receive merging): the caller then rebuilds instead.
    /// </summary>
    public bool TakeOver(LinuxUdpSocket replacement)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        if (ReferenceEquals(replacement, this) || replacement.IsIPv6 != IsIPv6 || replacement.GroEnabled != GroEnabled)
        {
            return false;
        }
        bool ours = false, theirs = false;
        try
        {
            _fd.DangerousAddRef(ref ours);
            replacement._fd.DangerousAddRef(ref theirs);
            if (LibC.dup3(replacement._fd.Fd, _fd.Fd, LibC.O_CLOEXEC) < 0)
            {
                int errno = LibC.errno;
                throw new UdpSocketException($"moving the UDP socket to port {replacement.LocalPort} failed: dup3: {Errno.Describe(errno)}", errno);
            }
            Volatile.Write(ref _localPort, replacement.LocalPort);
        }
        finally
        {
            if (theirs)
            {
                replacement._fd.DangerousRelease();
            }
            if (ours)
            {
                _fd.DangerousRelease();
            }
        }
        // The replacement's descriptor number only; the socket lives on in ours. Its Dispose neither
        // shuts the socket down nor touches this object's wake events.
        replacement.Dispose();
        KickReceiver();
        return true;
    }
}
