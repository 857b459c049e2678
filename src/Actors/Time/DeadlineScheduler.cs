using System.Collections.Concurrent;
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
/// Semantics as HashedWheelTimerScheduler: a cancelled item never runs; a repeated item runs again
/// <c>interval</c> after each run ends; an action that throws is logged and does not stop the
/// scheduler; on Dispose (the actor system terminating) every outstanding item runs once, so asks
/// time out and scheduled tells reach dead letters instead of vanishing. Per schedule it allocates
/// one entry and one timer: peers re-arm their timer when a deadline moves, not per packet.
/// </summary>
public sealed class DeadlineScheduler : SchedulerBase, IDateTimeOffsetNowTimeProvider, IDisposable
{
    /// <summary>The HOCON that selects this scheduler.</summary>
    public const string Hocon = "akka.scheduler.implementation = \"Firezone.Actors.Actors.Time.DeadlineScheduler, Firezone.Actors.Actors\"";

    // Timer's longest due time (0xFFFFFFFE ms, about 49.7 days); later items are re-armed when it passes.
    private static readonly TimeSpan LongestDue = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private readonly ConcurrentDictionary<Entry, byte> _pending = new();
    private volatile bool _disposed;

    public DeadlineScheduler(Config scheduler, ILoggingAdapter log) : base(scheduler, log)
    {
    }

    /// <summary>Items scheduled and not yet run for the last time or cancelled (for tests and diagnostics).</summary>
    public int Pending => _pending.Count;

    public DateTimeOffset Now => TimeNow;

    protected override DateTimeOffset TimeNow => DateTimeOffset.Now;

    // Akka's own MonotonicClock is internal; the same thing from the Stopwatch (CLOCK_MONOTONIC here).
    public override TimeSpan MonotonicClock => System.Diagnostics.Stopwatch.GetElapsedTime(0);

    public override TimeSpan HighResMonotonicClock => System.Diagnostics.Stopwatch.GetElapsedTime(0);

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
    }

    /// <summary>Stops every timer, then runs each outstanding item once (see the class comment).</summary>
    public void Dispose()
    {
        _disposed = true;
        foreach (var entry in _pending.Keys)
        {
            if (entry.Stop() && !entry.Cancelled)
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

    /// <summary>One scheduled item and its timer. Start, Fire and Stop serialise on the entry.</summary>
    private sealed class Entry(DeadlineScheduler owner, IRunnable action, ICancelable? cancelable, TimeSpan interval)
    {
        private readonly Lock _gate = new();
        private Timer? _timer;
        private CancellationTokenRegistration _registration;
        private DateTime _dueUtc; // only for items beyond the timer's longest due time
        private bool _stopped;

        public IRunnable Action => action;

        public bool Cancelled => cancelable?.IsCancellationRequested ?? false;

        public void Start(TimeSpan delay)
        {
            lock (_gate)
            {
                _timer = new Timer(static state => ((Entry)state!).Fire(), this, Timeout.Infinite, Timeout.Infinite);
                Arm(delay);
            }
            // After the timer exists: a token already cancelled calls Stop right here.
            if (cancelable is not null)
            {
                var registration = cancelable.Token.UnsafeRegister(static state => ((Entry)state!).Stop(), this);
                lock (_gate)
                {
                    if (_stopped)
                    {
                        registration.Dispose();
                    }
                    else
                    {
                        _registration = registration;
                    }
                }
            }
        }

        private void Arm(TimeSpan delay)
        {
            if (delay < TimeSpan.Zero)
            {
                delay = TimeSpan.Zero;
            }
            if (delay > LongestDue)
            {
                _dueUtc = DateTime.UtcNow + delay;
                delay = LongestDue;
            }
            else
            {
                _dueUtc = default;
            }
            _timer!.Change(delay, Timeout.InfiniteTimeSpan);
        }

        private void Fire()
        {
            lock (_gate)
            {
                if (_stopped)
                {
                    return;
                }
                if (_dueUtc != default && _dueUtc > DateTime.UtcNow)
                {
                    Arm(_dueUtc - DateTime.UtcNow); // a due time beyond the timer's range: not yet
                    return;
                }
            }
            if (Cancelled || owner._disposed)
            {
                Stop();
                return;
            }
            owner.Run(action);
            lock (_gate)
            {
                if (interval > TimeSpan.Zero && !_stopped && !Cancelled && !owner._disposed)
                {
                    Arm(interval);
                    return;
                }
            }
            Stop();
        }

        /// <summary>Stops the timer and forgets the item; true for the one call that did it.</summary>
        public bool Stop()
        {
            CancellationTokenRegistration registration;
            lock (_gate)
            {
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
