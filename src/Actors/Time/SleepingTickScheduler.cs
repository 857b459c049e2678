using System.Collections.Concurrent;
using System.Diagnostics;
using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Event;

namespace Firezone.Actors.Actors.Time;

/// <summary>
/// An Akka scheduler (<c>akka.scheduler.implementation</c>) that keeps the timing of Akka's
/// HashedWheelTimerScheduler but does not wake while nothing is due.
///
/// Why: the wheel ticks every <c>akka.scheduler.tick-duration</c> whether or not anything is
/// scheduled, and on .NET 6+ each tick is a PeriodicTimer continuation on the thread pool, which
/// wakes the timer thread and two pool workers. At a 100 ms tick an idle tunnel woke about 100 times
/// a second (wireguard-go: 8). Here one dedicated thread sleeps until the earliest item's tick, so an
/// idle tunnel whose next WireGuard timer is 10 s away wakes once in 10 s.
///
/// Written by hand because Akka ships no scheduler that sleeps while idle. What it keeps from the wheel:
/// - items run on the tick grid (<c>tick-duration</c>): at the first tick at or after their due
///   time, never early, and all items of one tick together, one after the other on the scheduler's
///   thread (every caller here only Tells);
/// - scheduling is a lock-free enqueue; the thread is signalled only when a new item is due before
///   the tick it sleeps until;
/// - a cancelled item is skipped when its tick comes (and purged when cancelled ones pile up);
///   what it would have run is let go at the cancel, so it keeps nothing alive while it waits;
/// - an action that throws is logged and not repeated;
/// - on Dispose (the actor system terminating) every item neither cancelled nor done runs once, so
///   CoordinatedShutdown's phase timeouts end and scheduled tells reach dead letters.
/// What differs: a tick with nothing due is skipped; a repeated item that fell behind by more than
/// an interval skips the missed runs instead of catching up.
/// (A scheduler with one .NET timer per item, tried on 2026-11-26, gave up the tick grid and ran
/// items on pool threads; see ActorTunnelComposition.)
/// </summary>
public sealed class SleepingTickScheduler : SchedulerBase, IDateTimeOffsetNowTimeProvider, IDisposable
{
    /// <summary>The HOCON that selects this scheduler.</summary>
    public const string Hocon = "akka.scheduler.implementation = \"Firezone.Actors.Actors.Time.SleepingTickScheduler, Firezone.Actors.Actors\"";

    // Cancelled items wait in the heap for their tick; past this many, and once they could be half
    // of it, the heap is rebuilt without them (Ask timeouts and re-armed timers are cancelled early).
    private const int PurgeThreshold = 1024;

    // Longer delays (TimeSpan.MaxValue is a possible input) wait this long: never, in practice.
    private static readonly TimeSpan LongestDelay = TimeSpan.FromDays(100 * 365);

    private readonly long _tick; // Stopwatch ticks per scheduler tick
    private readonly long _phase; // where this scheduler's grid starts within a tick (Stopwatch ticks)
    private readonly ConcurrentQueue<Item> _incoming = new();
    private readonly PriorityQueue<Item, long> _due = new(); // the scheduler thread's only
    private readonly object _sleep = new(); // a monitor: the thread waits on it
    private readonly Lock _leftovers = new();
    private readonly Thread _thread;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _wakeUps;
    private long _wakeAt = long.MinValue; // Stopwatch timestamp the thread sleeps until; MinValue: awake
    private int _purgeAt = PurgeThreshold;
    private volatile bool _disposing;
    private int _finished; // 1 once the thread ended; written with a full fence (see Schedule)

    public SleepingTickScheduler(Config scheduler, ILoggingAdapter log) : base(scheduler, log)
    {
        var tick = scheduler.IsNullOrEmpty()
            ? TimeSpan.FromMilliseconds(10)
            : scheduler.GetTimeSpan("akka.scheduler.tick-duration", TimeSpan.FromMilliseconds(10), allowInfinite: false);
        if (tick <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(scheduler), tick, "akka.scheduler.tick-duration must be positive");
        }
        TickDuration = tick;
        _tick = Math.Max((long)(tick.TotalSeconds * Stopwatch.Frequency), 1);
        // A grid of its own: on whole multiples of the tick in CLOCK_MONOTONIC, which every process
        // shares, all firezone-tunnels on a host ran their timers in the same ticks, and two peers
        // on one host that collided in a handshake retried in the same tick again most rounds (the
        // 0..333 ms retransmit jitter, whitepaper section 6.1, fell into the same 100 ms ticks).
        _phase = Random.Shared.NextInt64(_tick);
        _thread = new Thread(Loop) { IsBackground = true, Name = "akka-scheduler" };
        _thread.Start();
    }

    /// <summary>The grid items run on (<c>akka.scheduler.tick-duration</c>).</summary>
    public TimeSpan TickDuration { get; }

    /// <summary>Times the scheduler thread woke up (tests and diagnostics).</summary>
    public long WakeUps => Interlocked.Read(ref _wakeUps);

    /// <summary>Items in the thread's heap, cancelled ones not yet purged included (tests and diagnostics; racy).</summary>
    public int Queued => _due.Count;

    public DateTimeOffset Now => TimeNow;

    protected override DateTimeOffset TimeNow => DateTimeOffset.UtcNow;

    // Akka's own MonotonicClock is internal; the same thing from the Stopwatch (CLOCK_MONOTONIC here).
    public override TimeSpan MonotonicClock => Stopwatch.GetElapsedTime(0);

    public override TimeSpan HighResMonotonicClock => Stopwatch.GetElapsedTime(0);

    protected override void InternalScheduleTellOnce(TimeSpan delay, ICanTell receiver, object message, IActorRef sender, ICancelable cancelable) =>
        Schedule(delay, TimeSpan.Zero, new ScheduledTell(receiver, message, sender), cancelable);

    protected override void InternalScheduleTellRepeatedly(TimeSpan initialDelay, TimeSpan interval, ICanTell receiver, object message,
        IActorRef sender, ICancelable cancelable) =>
        Schedule(initialDelay, interval, new ScheduledTell(receiver, message, sender), cancelable);

    protected override void InternalScheduleOnce(TimeSpan delay, Action action, ICancelable cancelable) =>
        Schedule(delay, TimeSpan.Zero, new ActionRunnable(action), cancelable);

    protected override void InternalScheduleOnce(TimeSpan delay, IRunnable action, ICancelable cancelable) =>
        Schedule(delay, TimeSpan.Zero, action, cancelable);

    protected override void InternalScheduleRepeatedly(TimeSpan initialDelay, TimeSpan interval, Action action, ICancelable cancelable) =>
        Schedule(initialDelay, interval, new ActionRunnable(action), cancelable);

    protected override void InternalScheduleRepeatedly(TimeSpan initialDelay, TimeSpan interval, IRunnable action, ICancelable cancelable) =>
        Schedule(initialDelay, interval, action, cancelable);

    private void Schedule(TimeSpan delay, TimeSpan interval, IRunnable action, ICancelable? cancelable)
    {
        if (_disposing)
        {
            throw new SchedulerException("cannot schedule: the scheduler has shut down");
        }
        var item = new Item(action, cancelable, interval, TickAfter(Stopwatch.GetTimestamp(), delay));
        _incoming.Enqueue(item);
        // Enqueue is a full fence, as is the thread's write of _wakeAt before it looks at the queue:
        // either the thread sees this item, or this sees the tick it sleeps until.
        if (item.Due < Volatile.Read(ref _wakeAt))
        {
            lock (_sleep)
            {
                Monitor.Pulse(_sleep);
            }
        }
        if (Volatile.Read(ref _finished) == 1)
        {
            RunLeftovers(); // the thread ended meanwhile and may have missed it
        }
    }

    /// <summary>The first tick (of this scheduler's grid) at or after <paramref name="delay"/> from <paramref name="now"/>, as a Stopwatch timestamp.</summary>
    private long TickAfter(long now, TimeSpan delay)
    {
        if (delay < TimeSpan.Zero)
        {
            delay = TimeSpan.Zero;
        }
        else if (delay > LongestDelay)
        {
            delay = LongestDelay;
        }
        long due = now + (long)(delay.TotalSeconds * Stopwatch.Frequency);
        long rest = (due - _phase) % _tick;
        if (rest < 0)
        {
            rest += _tick;
        }
        return rest == 0 ? due : due - rest + _tick;
    }

    private void Loop()
    {
        while (!_disposing)
        {
            try
            {
                Turn();
            }
            catch (Exception e)
            {
                // A plain thread: an exception escaping would end the process. Nothing here should
                // throw (Run catches the items' own); if something does, log it and go on a tick later.
                Log.Error(e, "The scheduler thread failed; it goes on");
                Thread.Sleep(TickDuration);
            }
        }
        // A full fence before the thread looks at the queue a last time: either it sees an item
        // scheduled meanwhile, or that Schedule call sees this and runs the item itself.
        Interlocked.Exchange(ref _finished, 1);
        try
        {
            RunLeftovers();
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    /// <summary>One wake-up: take the new items, run the due ones, sleep until the next is due.</summary>
    private void Turn()
    {
        Interlocked.Exchange(ref _wakeAt, long.MinValue);
        Interlocked.Increment(ref _wakeUps);
        while (_incoming.TryDequeue(out var item))
        {
            Add(item);
        }
        long now = Stopwatch.GetTimestamp();
        while (!_disposing && _due.TryPeek(out var item, out long due) && due <= now)
        {
            _due.Dequeue();
            if (item.Action is not { } action || item.Cancelled)
            {
                continue;
            }
            if (Run(action) && item.Interval > TimeSpan.Zero && !item.Cancelled)
            {
                // One interval after the tick it was due at (the thread wakes a little after a
                // tick, so counting from now would add a tick each time); from now if it fell behind.
                long next = TickAfter(item.Due, item.Interval);
                item.Due = next > now ? next : TickAfter(now, item.Interval);
                Add(item);
            }
            else
            {
                item.Release();
            }
        }
        Sleep();
    }

    private void Add(Item item)
    {
        if (item.Cancelled)
        {
            return;
        }
        _due.Enqueue(item, item.Due);
        if (_due.Count >= _purgeAt)
        {
            Purge();
        }
    }

    /// <summary>Rebuilds the heap without cancelled items; the next purge once it has doubled.</summary>
    private void Purge()
    {
        var live = new List<(Item, long)>(_due.Count);
        foreach (var (item, due) in _due.UnorderedItems)
        {
            if (!item.Cancelled)
            {
                live.Add((item, due));
            }
        }
        _due.Clear();
        _due.EnqueueRange(live);
        _purgeAt = Math.Max(PurgeThreshold, live.Count * 2);
    }

    /// <summary>Until the earliest item's tick, a new earlier item, or Dispose.</summary>
    private void Sleep()
    {
        lock (_sleep)
        {
            long wakeAt = _due.TryPeek(out _, out long due) ? due : long.MaxValue;
            Interlocked.Exchange(ref _wakeAt, wakeAt);
            if (!_incoming.IsEmpty || _disposing)
            {
                return;
            }
            if (wakeAt == long.MaxValue)
            {
                Monitor.Wait(_sleep);
                return;
            }
            long rest = wakeAt - Stopwatch.GetTimestamp();
            if (rest > 0)
            {
                long perMillisecond = Math.Max(Stopwatch.Frequency / 1000, 1);
                // Rounded up: a wait that ends before the tick would only wake the thread twice.
                long milliseconds = Math.Min((rest + perMillisecond - 1) / perMillisecond, int.MaxValue - 1);
                Monitor.Wait(_sleep, (int)milliseconds);
            }
        }
    }

    private bool Run(IRunnable action)
    {
        try
        {
            action.Run();
            return true;
        }
        catch (SchedulerException)
        {
            return false; // a terminated actor's, as in HashedWheelTimerScheduler
        }
        catch (Exception e)
        {
            Log.Error(e, "Scheduled item {Item} failed", action);
            return false;
        }
    }

    /// <summary>After the thread ended: every outstanding item not cancelled runs once.</summary>
    private void RunLeftovers()
    {
        lock (_leftovers)
        {
            while (_incoming.TryDequeue(out var item))
            {
                Add(item);
            }
            while (_due.TryDequeue(out var item, out _))
            {
                if (item.Action is { } action && !item.Cancelled)
                {
                    Run(action);
                }
            }
        }
    }

    /// <summary>Stops the thread, then runs each outstanding item once (see the class comment).</summary>
    public void Dispose()
    {
        _disposing = true;
        lock (_sleep)
        {
            Monitor.Pulse(_sleep);
        }
        if (Thread.CurrentThread != _thread && !_stopped.Task.Wait(TimeSpan.FromSeconds(5)))
        {
            Log.Warning("The scheduler thread did not stop within 5 s (a scheduled item still running)");
        }
    }

    /// <summary>One scheduled item: what, how often, and the tick it is due at (a Stopwatch timestamp).</summary>
    private sealed class Item
    {
        private readonly ICancelable? _cancelable;
        private readonly CancellationTokenRegistration _forget;
        private IRunnable? _action;

        public Item(IRunnable action, ICancelable? cancelable, TimeSpan interval, long due)
        {
            _action = action;
            _cancelable = cancelable;
            Interval = interval;
            Due = due;
            if (cancelable is not null)
            {
                // A cancelled item waits in the heap for its tick or a purge, and the Tell of a
                // stopped actor's timer reaches, through its ActorRef and Props, all the actor was
                // made with: after a tunnel rebuild the old tunnel whole (its socket's pinned receive
                // slots among it), for up to the engine's 540 s zero-key timer. Dropped at the cancel.
                _forget = cancelable.Token.UnsafeRegister(static state => Volatile.Write(ref ((Item)state!)._action, null), this);
            }
        }

        /// <summary>What to run; null once cancelled.</summary>
        public IRunnable? Action => Volatile.Read(ref _action);

        public TimeSpan Interval { get; }

        public long Due { get; set; }

        public bool Cancelled => _cancelable?.IsCancellationRequested ?? false;

        /// <summary>Done with (ran for the last time): its cancelable need not reach it any more.</summary>
        public void Release() => _forget.Unregister();
    }

    /// <summary>A scheduled Tell, as HashedWheelTimerScheduler's.</summary>
    private sealed class ScheduledTell(ICanTell receiver, object message, IActorRef sender) : IRunnable
    {
        public void Run() => receiver.Tell(message, sender);

        public void Execute() => Run();

        public override string ToString() => $"[{receiver}.Tell({message}, {sender})]";
    }
}
