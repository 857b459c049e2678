using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// One peer's counters. Written only under the peer's <see cref="PeerDataPath"/> lock (plain
/// increments, no per-packet atomics), read by status queries and the metrics listener with volatile reads.
/// The object outlives restarts (it lives in the peer's <see cref="PeerSlot"/>), so counters are
/// cumulative for the peer, like `wg show`'s transfer.
/// </summary>
public sealed class PeerCounters
{
    // Inner packets (what the TUN sees).
    internal long TxPackets;
    internal long TxPacketBytes;
    internal long RxPackets;
    internal long RxPacketBytes;

    // Datagrams the socket sent, by outer codepoint (copy-in, RFC 6040 section 4.1; the Ecn value,
    // 0 to 3): added with the transfer, by the thread that sent them, once per run (Interlocked).
    private readonly long[] _sentByEcn = new long[4];

    // Copy-out (RFC 6040 section 4.2).
    internal long CeDatagramsReceived;
    internal long CeMarksPropagated;
    internal long EcnDrops;
    internal long EcnUnexpected;

    // Rejections.
    internal long AuthenticationFailures;
    internal long ReplayedRejected;
    internal long NoKeypairRejected;
    internal long SourceNotAllowedRejected;
    internal long MalformedRejected;
    internal long HandshakesRejected;
    internal long OutboundDropped;
    internal long OutboundInvalid;

    internal long Restarts; // written by the supervisor (Interlocked)
    internal long QueueFullDrops; // written by the reader threads outside the lock (Interlocked)
    internal long RestartDrops; // written under the peer's lock

    // Datagrams the engine sealed that the socket did not send (refused: no route, a
    // firewall; dropped: buffer full), and the reason and destination of the last one. Written by
    // whichever thread sent the batch (Interlocked), off the peer's lock.
    internal long DatagramsNotSent;
    // The transfer (`wg show`'s tx): bytes of this peer's datagrams the socket sent, added by the
    // thread that sent them once per run of the peer's datagrams in a batch (Interlocked), as
    // wireguard-go and the kernel add a datagram's bytes once it is sent. It only grows: counted at
    // sealing and taken off when a send failed, a read in between saw bytes that then vanished.
    private long _txBytesSent;
    private readonly object _notSentGate = new();
    private int _lastNotSentErrno;
    private UdpEndpoint _lastNotSentTo;

    private readonly object _snapshotGate = new();
    private UdpEndpoint _endpoint;
    private UdpEndpoint _localAddress;
    private DateTime? _lastHandshakeUtc;
    private long _rxBytes;
    // What the engine peers of earlier runs of this peer's connection (before a restart after a
    // fault) received: a restart's fresh engine peer counts from zero, `wg show`'s transfer does not.
    private long _rxBytesCarried;

    /// <summary>Copies the engine's own view (endpoint and local address, last handshake, bytes received) once per message, not per packet.</summary>
    internal void Publish(UdpEndpoint endpoint, UdpEndpoint localAddress, DateTime? lastHandshakeUtc, long rxBytes)
    {
        lock (_snapshotGate)
        {
            _endpoint = endpoint;
            _localAddress = localAddress;
            _lastHandshakeUtc = lastHandshakeUtc;
            _rxBytes = rxBytes;
        }
    }

    /// <summary>
    /// The view for status: rx over every run of the connection (the engine's count), tx what the
    /// socket sent (so `wg show` counts what left, as wireguard-go does, and never less than before).
    /// </summary>
    internal (UdpEndpoint Endpoint, DateTime? LastHandshakeUtc, long RxBytes, long TxBytes) ReadEngineView()
    {
        lock (_snapshotGate)
        {
            return (_endpoint, _lastHandshakeUtc, _rxBytesCarried + _rxBytes, Interlocked.Read(ref _txBytesSent));
        }
    }

    /// <summary>
    /// <paramref name="bytes"/> of this peer's datagrams were sent, <paramref name="byEcn"/>[e] of
    /// them with outer codepoint e (any thread; once per run of them in a batch).
    /// </summary>
    internal void CountSent(long bytes, ReadOnlySpan<int> byEcn)
    {
        Interlocked.Add(ref _txBytesSent, bytes);
        for (int e = 0; e < _sentByEcn.Length; e++)
        {
            if (byEcn[e] != 0)
            {
                Interlocked.Add(ref _sentByEcn[e], byEcn[e]);
            }
        }
    }

    /// <summary>Where the engine peer last sent, and from which local address: a restart's fresh engine peer starts from there.</summary>
    internal (UdpEndpoint Endpoint, UdpEndpoint LocalAddress) ReadLastPath()
    {
        lock (_snapshotGate)
        {
            return (_endpoint, _localAddress);
        }
    }

    /// <summary>
    /// The connection's engine peer is closed having received <paramref name="rxBytes"/> (a restart
    /// or removal follows): they carry on under the next engine peer's, which counts from zero.
    /// </summary>
    internal void CarryEngineView(long rxBytes)
    {
        lock (_snapshotGate)
        {
            _rxBytesCarried += rxBytes;
            _rxBytes = 0;
        }
    }

    /// <summary>
    /// <paramref name="datagram"/>, which this peer's engine sealed, was not sent, for
    /// <paramref name="errno"/> (any thread; only on a failed send, so the lock costs nothing on the hot path).
    /// </summary>
    internal void CountUnsent(PacketBuffer datagram, int errno)
    {
        lock (_notSentGate)
        {
            _lastNotSentErrno = errno;
            _lastNotSentTo = datagram.Endpoint;
        }
        Interlocked.Increment(ref DatagramsNotSent);
    }

    /// <summary>The errno and destination of the last datagram not sent (errno 0: none yet).</summary>
    internal (int Errno, UdpEndpoint To) LastNotSent
    {
        get
        {
            lock (_notSentGate)
            {
                return (_lastNotSentErrno, _lastNotSentTo);
            }
        }
    }

    /// <summary>Datagrams the socket sent with outer codepoint <paramref name="outer"/>.</summary>
    internal long DatagramsSentWith(Ecn outer) => Volatile.Read(ref _sentByEcn[(int)outer & 3]);

    /// <summary>Packets a reader dropped because the peer's actor path was full (PeerGroups); off the lock, so atomic.</summary>
    internal void CountQueueFullDrops(int packets) => Interlocked.Add(ref QueueFullDrops, packets);

    internal static long Read(ref long field) => Volatile.Read(ref field);
}
