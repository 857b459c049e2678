using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Firezone.Actors.Actors.Time;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// The daemon's Akka scheduler, on real time (delays of tens of milliseconds, bounds of seconds:
/// nothing here depends on how fast the machine is): items run once, repeat until cancelled, are
/// forgotten (their timers freed) when done or cancelled, survive a throwing action, and run once
/// more when the actor system shuts down, never run early, accept any delay; and an actor system on
/// it runs IWithTimers, whose re-arming frees the replaced timer.
/// </summary>
public sealed class DeadlineSchedulerTests(ITestOutputHelper output)
    : Akka.TestKit.Xunit2.TestKit(ConfigurationFactory.ParseString(DeadlineScheduler.Hocon), output: output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    private IScheduler Scheduler => Sys.Scheduler;

    private int Pending => Assert.IsType<DeadlineScheduler>(Sys.Scheduler).Pending;

    private static DeadlineScheduler Standalone() => new(ConfigurationFactory.Empty, NoLogger.Instance);

    [Fact]
    public void A_tell_scheduled_once_arrives_once_and_is_then_forgotten()
    {
        Scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(30), TestActor, "once", ActorRefs.NoSender);
        ExpectMsg("once", Bound);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        AwaitCondition(() => Pending == 0, Bound);
    }

    [Fact]
    public void A_cancelled_item_never_runs_and_its_timer_is_freed_at_once()
    {
        using var scheduler = Standalone();
        int runs = 0;
        var cancelable = new Cancelable((IScheduler)scheduler);
        ((IScheduler)scheduler).Advanced.ScheduleOnce(TimeSpan.FromSeconds(1), () => Interlocked.Increment(ref runs), cancelable);
        Assert.Equal(1, scheduler.Pending);
        cancelable.Cancel();
        Assert.Equal(0, scheduler.Pending);
        Thread.Sleep(1500);
        Assert.Equal(0, Volatile.Read(ref runs));

        // Cancelled before it was scheduled: never armed.
        var early = new Cancelable((IScheduler)scheduler);
        early.Cancel();
        ((IScheduler)scheduler).Advanced.ScheduleOnce(TimeSpan.Zero, () => Interlocked.Increment(ref runs), early);
        Assert.Equal(0, scheduler.Pending);
        Thread.Sleep(100);
        Assert.Equal(0, Volatile.Read(ref runs));
    }

    [Fact]
    public void A_repeated_tell_repeats_until_cancelled()
    {
        var cancelable = Scheduler.ScheduleTellRepeatedlyCancelable(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(20),
            TestActor, "tick", ActorRefs.NoSender);
        for (int i = 0; i < 3; i++)
        {
            ExpectMsg("tick", Bound);
        }
        cancelable.Cancel();
        AwaitCondition(() => Pending == 0, Bound);
        // At most one tick was already on its way when the cancel came (a repeater that went on
        // would send 15 more in 300 ms); then nothing.
        for (int i = 0; i < 3 && ReceiveOne(TimeSpan.FromMilliseconds(300)) is not null; i++)
        {
        }
        ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public void An_action_that_throws_is_logged_and_the_scheduler_goes_on()
    {
        EventFilter.Exception<InvalidOperationException>().ExpectOne(() =>
            Scheduler.Advanced.ScheduleOnce(TimeSpan.Zero, () => throw new InvalidOperationException("boom")));
        Scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(10), TestActor, "still here", ActorRefs.NoSender);
        ExpectMsg("still here", Bound);
    }

    [Fact]
    public void Dispose_runs_each_outstanding_item_once_and_refuses_new_ones()
    {
        var scheduler = Standalone();
        int runs = 0, cancelledRuns = 0;
        ((IScheduler)scheduler).Advanced.ScheduleOnce(TimeSpan.FromHours(1), () => Interlocked.Increment(ref runs));
        ((IScheduler)scheduler).Advanced.ScheduleRepeatedly(TimeSpan.FromHours(1), TimeSpan.FromHours(1), () => Interlocked.Increment(ref runs));
        var cancelable = new Cancelable((IScheduler)scheduler);
        ((IScheduler)scheduler).Advanced.ScheduleOnce(TimeSpan.FromHours(1), () => Interlocked.Increment(ref cancelledRuns), cancelable);
        cancelable.Cancel();
        scheduler.Dispose();
        Assert.Equal(2, runs);
        Assert.Equal(0, cancelledRuns);
        Assert.Equal(0, scheduler.Pending);
        Assert.Throws<SchedulerException>(() => ((IScheduler)scheduler).Advanced.ScheduleOnce(TimeSpan.Zero, () => { }));
    }

    [Fact]
    public void An_item_never_runs_before_its_delay()
    {
        using var scheduler = Standalone();
        var delays = new[] { 1, 5, 16, 30 };
        var ran = new TimeSpan[delays.Length];
        using var done = new CountdownEvent(delays.Length);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int i = 0; i < delays.Length; i++)
        {
            int k = i;
            ((IScheduler)scheduler).Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(delays[k]), () =>
            {
                ran[k] = System.Diagnostics.Stopwatch.GetElapsedTime(start);
                done.Signal();
            });
        }
        Assert.True(done.Wait(Bound));
        for (int i = 0; i < delays.Length; i++)
        {
            Assert.True(ran[i] >= TimeSpan.FromMilliseconds(delays[i]), $"due after {delays[i]} ms, ran after {ran[i].TotalMilliseconds} ms");
        }
    }

    [Fact]
    public void A_delay_beyond_the_timers_range_or_any_range_is_accepted_and_waits()
    {
        using var scheduler = Standalone();
        int runs = 0;
        ((IScheduler)scheduler).Advanced.ScheduleOnce(TimeSpan.FromDays(400), () => Interlocked.Increment(ref runs));
        ((IScheduler)scheduler).Advanced.ScheduleOnce(TimeSpan.MaxValue, () => Interlocked.Increment(ref runs));
        ((IScheduler)scheduler).Advanced.ScheduleRepeatedly(TimeSpan.Zero, TimeSpan.MaxValue, () => Interlocked.Increment(ref runs));
        Thread.Sleep(200);
        Assert.Equal(1, Volatile.Read(ref runs)); // only the repeater's first run
        Assert.Equal(3, scheduler.Pending);
    }

    private sealed class TimerActor : UntypedActor, IWithTimers
    {
        public ITimerScheduler Timers { get; set; } = null!;

        protected override void OnReceive(object message)
        {
            switch (message)
            {
                case ("arm", IActorRef probe):
                    Timers.StartSingleTimer("key", ("fired", probe), TimeSpan.FromSeconds(30));
                    // Re-arming the same key cancels the first timer: one item left, due sooner.
                    Timers.StartSingleTimer("key", ("fired", probe), TimeSpan.FromMilliseconds(30));
                    Sender.Tell("armed");
                    break;
                case ("fired", IActorRef probe):
                    probe.Tell("timer fired");
                    break;
            }
        }
    }

    [Fact]
    public void An_actor_system_on_it_runs_actor_timers_and_frees_replaced_ones()
    {
        var actor = Sys.ActorOf(Props.Create(() => new TimerActor()));
        int before = Pending;
        actor.Tell(("arm", TestActor));
        ExpectMsg("armed", Bound);
        Assert.True(Pending <= before + 1, $"{Pending - before} items for one timer key"); // the replaced one is gone
        ExpectMsg("timer fired", Bound);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }
}
