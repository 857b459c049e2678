using System.Diagnostics;

namespace Firezone.Actors.Actors.Io;

/// <summary>
/// How long a reader thread busy-polls the other device for the reply after a packet woke it from
/// idle (see <see cref="BatchReaderThread{TSteps}"/>), adapted to how fast the replies come:
/// the limit halves (down to <see cref="Min"/>) each time no reply came within it, and goes back
/// to <see cref="Max"/> when one did. Every <see cref="ProbeEvery"/>th poll below the maximum uses
/// the maximum, so a tunnel whose replies became fast again is noticed. A tunnel whose replies come
/// back quickly (a LAN, a Gateway whose kernel answers at once) keeps polling long enough to catch
/// them; one whose replies take milliseconds soon polls briefly, so waiting costs little CPU.
///
/// Written by hand: this is the user-space counterpart of the kernel's busy polling
/// (SO_BUSY_POLL), which polls NIC queues and does nothing for a TUN device or a veth.
/// Owned by one reader thread; not thread-safe.
/// </summary>
internal struct ReplyPoll(TimeSpan max)
{
    /// <summary>A reader counts as woken from idle when it waited at least this long for its read.</summary>
    public static readonly TimeSpan IdleBefore = TimeSpan.FromMilliseconds(1);

    /// <summary>The shortest limit: a few polls, enough for a reply the kernel has queued already.</summary>
    public static readonly TimeSpan Min = TimeSpan.FromMicroseconds(20);

    public const int ProbeEvery = 16;

    private readonly long _maxTicks = ToTicks(max);
    private long _limitTicks = ToTicks(max);
    private int _polls;

    public readonly bool Enabled => _maxTicks > 0;

    /// <summary>The limit for the poll that starts now, in <see cref="Stopwatch"/> ticks.</summary>
    public long Begin() => _limitTicks < _maxTicks && ++_polls % ProbeEvery == 0 ? _maxTicks : _limitTicks;

    /// <summary>A reply came within the limit.</summary>
    public void Caught() => _limitTicks = _maxTicks;

    /// <summary>The limit passed without a reply.</summary>
    public void Missed() => _limitTicks = Math.Max(_limitTicks / 2, Math.Min(ToTicks(Min), _maxTicks));

    private static long ToTicks(TimeSpan t) => (long)(t.TotalSeconds * Stopwatch.Frequency);
}
