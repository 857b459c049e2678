using System.Collections.Concurrent;
using System.Diagnostics;
using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Event;

namespace Firezone.Actors.Actors.Time;

/// <summary>
/// An Akka scheduler (<c>akka.scheduler.implementation</c>) that wakes only when something is due.
/// Akka's own HashedWheelTimerScheduler ticks whether or not anything is scheduled: at its default
/// 10 ms tick an idle tunnel woke 828 times a second, at 100 ms still about 10 times a second plus
/// the thread-pool hand-offs each tick costs. Here every scheduled item is one .NET
/// <see cref="Timer"/>: the runtime keeps them in its timer queue and sleeps until the earliest
/// deadline, so an idle tunnel whose next WireGuard timer is 10 s away wakes once in 10 s.
///
/// Written by hand because Akka ships no deadline-based scheduler; the timing itself is .NET's.
/// How it differs from HashedWheelTimerScheduler, and where it does not:
/// - an item never runs early: .NET's timer queue counts coarse milliseconds, so an item it fires
///   before its monotonic due time is re-armed for the rest (a WireGuard timer that fired early
///   would only be re-armed by the peer, one actor message more);
/// - a cancel that comes before an item starts running stops it; one that comes while it runs stops
///   its repetitions;
/// - items due at the same moment may run at once on different pool threads, not one after the
///   other on the scheduler's thread (every caller here Tells, which is thread-safe);
/// - a repeated action that throws is logged and repeats;
/// - on Dispose (the actor system terminating) every item that is neither cancelled nor running
///   runs once, as HashedWheelTimerScheduler does: CoordinatedShutdown's phase timeouts end and
///   scheduled tells reach dead letters instead of vanishing.
/// Per schedule it allocates one entry and one timer: peers re-arm their timer when a deadline
/// moves, not per packet.
/// </summary>
public sealed class DeadlineScheduler : SchedulerBase, IDateTimeOffsetNowTimeProvider, IDisposable
{
    /// <summary>The HOCON that selects this scheduler.</summary>
    public const string Hocon = "akka.scheduler.implementation = \"Firezone.Actors.Actors.Time.DeadlineScheduler, Firezone.Actors.Actors\"";

    // Timer's longest due time (0xFFFFFFFE ms, about 49.7 days); later items are re-armed when it passes.
    private const long LongestDueMilliseconds = uint.MaxValue - 1;

    // Longer delays (TimeSpan.MaxValue is a possible input) wait this long: never, in practice.
    private static readonly TimeSpan LongestDelay = TimeSpan.FromDays(100 * 365);

    private readonly ConcurrentDictionary<Entry, byte> _pending = new();
    private volatile bool _disposed;

    public DeadlineScheduler(Config scheduler, ILoggingAdapter log) : base(scheduler, log)
    {
    }

    /// <summary>Items scheduled and not yet run for the last time or cancelled (for tests and diagnostics).</summary>
    public int Pending => _pending.Count;

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
        if (_disposed)
        {
            throw new SchedulerException("cannot schedule: the scheduler has shut down");
        }
        var entry = new Entry(this, action, cancelable, interval);
        _pending.TryAdd(entry, 0);
        entry.Start(delay);
        if (_disposed && entry.StopForShutdown())
        {
            Run(action); // Dispose ran meanwhile and may have missed this one: as if it had not
        }
    }

    /// <summary>Stops every timer, then runs each outstanding item once (see the class comment).</summary>
    public void Dispose()
    {
        _disposed = true;
        foreach (var entry in _pending.Keys)
        {
            if (entry.StopForShutdown())
            {
                Run(entry.Action);
            }
        }
    }

    private void Run(IRunnable action)
    {
        try
        {
            action.Run();
        }
        catch (SchedulerException)
        {
            // a terminated actor's, as in HashedWheelTimerScheduler
        }
        catch (Exception e)
        {
            Log.Error(e, "Scheduled item {0} failed", action);
        }
    }

    /// <summary>One scheduled item and its timer. Start, Fire and the stops serialise on the entry's lock.</summary>
    private sealed class Entry(DeadlineScheduler owner, IRunnable action, ICancelable? cancelable, TimeSpan interval)
    {
        private readonly Lock _gate = new();
        private Timer? _timer;
        private CancellationTokenRegistration _registration;
        private long _due; // Stopwatch timestamp
        private bool _stopped;
        private bool _running;

        public IRunnable Action => action;

        private bool Cancelled => cancelable?.IsCancellationRequested ?? false;

        public void Start(TimeSpan delay)
        {
            lock (_gate)
            {
                // No ExecutionContext captured: a caller's AsyncLocals (logging scopes) would flow
                // into every callback and stay alive with the timer.
                using (ExecutionContext.SuppressFlow())
                {
                    _timer = new Timer(static state => ((Entry)state!).Fire(), this, Timeout.Infinite, Timeout.Infinite);
                }
                Arm(delay);
            }
            // After the timer exists: a token already cancelled calls Stop right here.
            if (cancelable is not null)
            {
                var registration = cancelable.Token.UnsafeRegister(static state => ((Entry)state!).Stop(), this);
                lock (_gate)
                {
                    if (!_stopped)
                    {
                        _registration = registration;
                        return;
                    }
                }
                // Stopped meanwhile. Unregister, not Dispose: Dispose would wait for a running
                // callback, which may be a Stop waiting for the lock this thread just left.
                registration.Unregister();
            }
        }

        /// <summary>Under the lock: due in <paramref name="delay"/> from now.</summary>
        private void Arm(TimeSpan delay)
        {
            if (delay < TimeSpan.Zero)
            {
                delay = TimeSpan.Zero;
            }
            else if (delay > LongestDelay)
            {
                delay = LongestDelay;
            }
            _due = Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);
            ArmRest();
        }

        /// <summary>Under the lock: the timer set to the rest of the wait, rounded up to whole milliseconds.</summary>
        private void ArmRest()
        {
            if (_stopped)
            {
                return;
            }
            long rest = _due - Stopwatch.GetTimestamp();
            long perMillisecond = Math.Max(Stopwatch.Frequency / 1000, 1);
            long milliseconds = rest <= 0 ? 0 : Math.Min((rest + perMillisecond - 1) / perMillisecond, LongestDueMilliseconds);
            _timer!.Change(milliseconds, Timeout.Infinite);
        }

        private void Fire()
        {
            bool run;
            lock (_gate)
            {
                if (_stopped || _running)
                {
                    return;
                }
                if (Stopwatch.GetTimestamp() < _due)
                {
                    ArmRest(); // early (coarse timer clock), or a delay beyond the timer's range
                    return;
                }
                run = _running = !Cancelled && !owner._disposed;
            }
            if (!run)
            {
                Stop();
                return;
            }
            owner.Run(action);
            lock (_gate)
            {
                _running = false;
                if (interval > TimeSpan.Zero && !_stopped && !Cancelled && !owner._disposed)
                {
                    Arm(interval);
                    return;
                }
            }
            Stop();
        }

        /// <summary>Stops the timer and forgets the item; true for the one call that did it.</summary>
        public bool Stop() => Stop(out _);

        /// <summary>Stops the item for Dispose: true if it should run once now (not cancelled, not running, not stopped before).</summary>
        public bool StopForShutdown() => Stop(out bool wasRunning) && !wasRunning && !Cancelled;

        private bool Stop(out bool wasRunning)
        {
            CancellationTokenRegistration registration;
            lock (_gate)
            {
                wasRunning = _running;
                if (_stopped)
                {
                    return false;
                }
                _stopped = true;
                _timer?.Dispose();
                registration = _registration;
                _registration = default;
            }
            // Unregister, not Dispose: it never waits for a running callback (which may be this Stop).
            registration.Unregister();
            owner._pending.TryRemove(this, out _);
            return true;
        }
    }

    /// <summary>A scheduled Tell, as HashedWheelTimerScheduler's.</summary>
    private sealed class ScheduledTell(ICanTell receiver, object message, IActorRef sender) : IRunnable
    {
        public void Run() => receiver.Tell(message, sender);

        public void Execute() => Run();

        public override string ToString() => $"[{receiver}.Tell({message}, {sender})]";
    }
}
