using System.Buffers.Binary;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// TAI64N timestamps for handshake initiations (whitepaper section 5.4.2): 12 bytes big-endian,
/// 8 bytes of 2^62 + seconds and 4 bytes of nanoseconds. Like the Linux kernel and wireguard-go we
/// add the 10-second TAI offset (base 0x400000000000000a) so our timestamps order the same way as
/// theirs when a key moves between implementations, and round nanoseconds down to 2^24 ns so the
/// timestamp leaks little about the sender's clock and at most ~60 initiations per second can carry
/// a fresh timestamp.
/// </summary>
public static class Tai64N
{
    public const int Size = 12;
    private const ulong Base = 0x400000000000000aUL;
    private const uint WhitenerMask = (1u << 24) - 1;

    public static void Write(DateTime utc, Span<byte> destination12)
    {
        long ticksSinceEpoch = utc.Ticks - DateTime.UnixEpoch.Ticks;
        long seconds = Math.DivRem(ticksSinceEpoch, TimeSpan.TicksPerSecond, out long remainder);
        if (remainder < 0)
        {
            seconds--;
            remainder += TimeSpan.TicksPerSecond;
        }
        uint nanoseconds = (uint)(remainder * 100) & ~WhitenerMask;
        BinaryPrimitives.WriteUInt64BigEndian(destination12, Base + (ulong)seconds);
        BinaryPrimitives.WriteUInt32BigEndian(destination12[8..], nanoseconds);
    }

    /// <summary>True when <paramref name="a"/> is strictly later than <paramref name="b"/> (big-endian byte order is time order).</summary>
    public static bool IsAfter(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => a[..Size].SequenceCompareTo(b[..Size]) > 0;
}
