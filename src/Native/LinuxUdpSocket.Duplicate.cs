using Firezone.Actors.Engine.Buffers;
using Tmds.Linux;

namespace Firezone.Actors.Native;

public sealed partial class LinuxUdpSocket
{
    /// <summary>
    /// A second object on the same socket: a duplicate of this descriptor (the same bound port, mark,
    /// buffer sizes and receive merging), with wake-ups and batches of its own. For a tunnel rebuilt
    /// while a receive thread of the old one may still be in a call on this object: that thread keeps
    /// this one (its wake-up stays signalled; once this one is disposed, the descriptor closes when
    /// the thread lets go), the new tunnel uses the duplicate. Closing this socket and binding its
    /// port again instead failed while that thread held the descriptor (the port still bound:
    /// EADDRINUSE), and would let another process take the port in between.
    /// </summary>
    /// <exception cref="UdpSocketException">With a message meant for the user.</exception>
    public LinuxUdpSocket Duplicate()
    {
        var fd = _fd.TryDuplicate(out int errno)
            ?? throw new UdpSocketException($"duplicating the descriptor of the UDP socket on port {LocalPort} failed: {Errno.Describe(errno)}", errno);
        return new LinuxUdpSocket(this, fd);
    }

    private LinuxUdpSocket(LinuxUdpSocket original, SafeFileDescriptorHandle fd)
    {
        _fd = fd;
        _useMmsg = original._useMmsg;
        IsIPv6 = original.IsIPv6;
        ReceiveBufferSize = original.ReceiveBufferSize;
        SendBufferSize = original.SendBufferSize;
        _localPort = original.LocalPort;
        GsoEnabled = original.GsoEnabled;
        // The route changes the original heard of, and the addresses confirmed since: the peers keep
        // their local addresses across the rebuild.
        _routeGeneration = Volatile.Read(ref original._routeGeneration);
        _confirmedSources = Volatile.Read(ref original._confirmedSources);
        int batchSize = original._receive.Capacity;
        try
        {
            _wake = new WakeEvent(EventFdFailed);
            _kick = new WakeEvent(EventFdFailed);
            _receive = new MessageBatch(batchSize);
            _send = new MessageBatch(batchSize);
            _sendSegments = new int[batchSize];
            _sendFirst = new int[batchSize];
            _sendSourceSpace = new int[batchSize];
            _sendSource = new UdpEndpoint[batchSize];
            if (original.GroEnabled)
            {
                _groSlots = new GroReceiveSlots(_receive); // UDP_GRO is the socket's: on for the duplicate too
            }
        }
        catch
        {
            // Nothing owns this object yet: the descriptors it holds close here.
            _fd.Dispose();
            _wake?.Dispose();
            _kick?.Dispose();
            throw;
        }
    }
}
