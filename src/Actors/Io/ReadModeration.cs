namespace Firezone.Actors.Actors.Io;

/// <summary>
/// When a reader thread pauses before its next read (see <see cref="BatchReaderThread{TSteps}"/>):
/// after a read that found a few full-size packets while traffic streams, so that the next read
/// finds more. A stream that arrives a packet or two at a time otherwise costs one wake-up, one
/// poll and one read per packet or two, and one TUN write per packet or two (each waking the
/// receiving application): with 100 peers sending through a Gateway, 16,000 reads a second of 4
/// datagrams each. Pausing lets the batch grow, so the system calls, wake-ups and writes are shared
/// by more packets, and runs of one flow can be merged. The price is up to the pause of added delay
/// for bulk packets while a stream runs; it is the user-space counterpart of a NIC's interrupt
/// moderation (ethtool's rx-usecs).
///
/// It never pauses:
/// - after a read that woke the reader from idle (a ping, the first packet of a burst; reply
///   polling applies there instead);
/// - after a read of small packets (TCP ACKs, pings, DNS, voice), which are latency-bound;
/// - after a read that filled <see cref="FewPackets"/> or more buffers (the batch is large already).
/// Written by hand: the kernel has no moderation for a TUN device or a UDP socket.
/// </summary>
internal readonly struct ReadModeration(TimeSpan pause)
{
    /// <summary>Reads of fewer packets than this may be followed by a pause.</summary>
    public const int FewPackets = 8;

    /// <summary>Packets at least this long on average count as bulk (1392-byte datagrams, full TCP segments; not ACKs).</summary>
    public const int BulkBytes = 1000;

    /// <summary>The pause in microseconds, at most TunnelSettings.MostReadModerationMicroseconds; 0: never.</summary>
    public uint Microseconds { get; } = (uint)Math.Clamp(pause.TotalMicroseconds, 0, Tunnel.TunnelSettings.MostReadModerationMicroseconds);

    /// <summary>True when the reader should pause before its next read.</summary>
    /// <param name="read">Packets the read found.</param>
    /// <param name="bytes">Their total length.</param>
    /// <param name="fromIdle">The reader had waited for the read at least <see cref="ReplyPoll.IdleBefore"/>.</param>
    public bool ShouldPause(int read, long bytes, bool fromIdle) =>
        Microseconds > 0 && !fromIdle && read > 0 && read < FewPackets && bytes >= (long)read * BulkBytes;
}
