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

    // Outer codepoint of each datagram handed to the socket (copy-in, RFC 6040 section 4.1).
    internal long DatagramsSentNotEct;
    internal long DatagramsSentEct0;
    internal long DatagramsSentEct1;
    internal long DatagramsSentCe;

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

    // Datagrams the engine counted as sent that the socket did not send (refused: no route, a
    // firewall; dropped: buffer full), their bytes and the errno of the last one. Written by
    // whichever thread sent the batch (Interlocked), off the peer's lock.
    internal long DatagramsNotSent;
    private long _txBytesUnsent;
    private int _lastNotSentErrno;

    private readonly object _snapshotGate = new();
    private UdpEndpoint _endpoint;
    private DateTime? _lastHandshakeUtc;
    private long _rxBytes;
    private long _txBytes;
    // What the engine peers of earlier runs of this peer's connection (before a restart after a
    // fault) counted: a restart's fresh engine peer counts from zero, `wg show`'s transfer does not.
    private long _rxBytesCarried;
    private long _txBytesCarried;

    internal void CountDatagramSent(Ecn outer)
    {
        switch (outer)
        {
            case Ecn.Ect0: DatagramsSentEct0++; break;
            case Ecn.Ect1: DatagramsSentEct1++; break;
            case Ecn.Ce: DatagramsSentCe++; break;
            default: DatagramsSentNotEct++; break;
        }
    }

    /// <summary>Copies the engine's own view (endpoint, last handshake, transfer) once per message, not per packet.</summary>
    internal void Publish(UdpEndpoint endpoint, DateTime? lastHandshakeUtc, long rxBytes, long txBytes)
    {
        lock (_snapshotGate)
        {
            _endpoint = endpoint;
            _lastHandshakeUtc = lastHandshakeUtc;
            _rxBytes = rxBytes;
            _txBytes = txBytes;
        }
    }

    /// <summary>
    /// The engine's view for status: transfer over every run of the connection, tx without the
    /// datagrams the socket did not send (so `wg show` counts what left, as wireguard-go does).
    /// </summary>
    internal (UdpEndpoint Endpoint, DateTime? LastHandshakeUtc, long RxBytes, long TxBytes) ReadEngineView()
    {
        lock (_snapshotGate)
        {
            long tx = _txBytesCarried + _txBytes - Interlocked.Read(ref _txBytesUnsent);
            return (_endpoint, _lastHandshakeUtc, _rxBytesCarried + _rxBytes, Math.Max(0, tx));
        }
    }

    /// <summary>
    /// The connection's engine peer is closed with these totals (a restart or removal follows): they
    /// carry on under the next engine peer's, which counts from zero.
    /// </summary>
    internal void CarryEngineView(long rxBytes, long txBytes)
    {
        lock (_snapshotGate)
        {
            _rxBytesCarried += rxBytes;
            _txBytesCarried += txBytes;
            _rxBytes = 0;
            _txBytes = 0;
        }
    }

    /// <summary>A datagram of <paramref name="bytes"/> this peer's engine counted as sent was not sent, for <paramref name="errno"/> (any thread).</summary>
    internal void CountUnsent(int bytes, int errno)
    {
        Volatile.Write(ref _lastNotSentErrno, errno);
        Interlocked.Add(ref _txBytesUnsent, bytes);
        Interlocked.Increment(ref DatagramsNotSent);
    }

    /// <summary>A datagram of <paramref name="bytes"/> this peer's engine counted as sent was dropped before it reached the socket (any thread).</summary>
    internal void CountDiscarded(int bytes) => Interlocked.Add(ref _txBytesUnsent, bytes);

    /// <summary>The errno of the last datagram not sent (0: none yet).</summary>
    internal int LastNotSentErrno => Volatile.Read(ref _lastNotSentErrno);

    /// <summary>Packets a reader dropped because the peer's actor path was full (PeerGroups); off the lock, so atomic.</summary>
    internal void CountQueueFullDrops(int packets) => Interlocked.Add(ref QueueFullDrops, packets);

    internal static long Read(ref long field) => Volatile.Read(ref field);
}
