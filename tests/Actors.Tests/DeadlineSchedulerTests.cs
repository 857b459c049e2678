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
/// more when the actor system shuts down; and an actor system on it runs IWithTimers and asks.
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
        ((IScheduler)scheduler).Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(200), () => Interlocked.Increment(ref runs), cancelable);
        Assert.Equal(1, scheduler.Pending);
        cancelable.Cancel();
        Assert.Equal(0, scheduler.Pending);
        Thread.Sleep(500);
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
        // At most one tick was already on its way when the cancel came; then nothing.
        ReceiveWhile(TimeSpan.FromMilliseconds(100), m => m);
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
    public void A_delay_beyond_the_timers_range_is_accepted_and_waits()
    {
        using var scheduler = Standalone();
        int runs = 0;
        ((IScheduler)scheduler).Advanced.ScheduleOnce(TimeSpan.FromDays(400), () => Interlocked.Increment(ref runs));
        Assert.Equal(1, scheduler.Pending);
        Thread.Sleep(100);
        Assert.Equal(0, Volatile.Read(ref runs));
    }

    private sealed class TimerActor : UntypedActor, IWithTimers
    {
        public ITimerScheduler Timers { get; set; } = null!;

        protected override void OnReceive(object message)
        {
            switch (message)
            {
                case ("arm", IActorRef probe):
                    Timers.StartSingleTimer("key", ("fired", probe), TimeSpan.FromMilliseconds(200));
                    // Re-arming the same key replaces the timer: only the second one fires.
                    Timers.StartSingleTimer("key", ("fired", probe), TimeSpan.FromMilliseconds(30));
                    break;
                case ("fired", IActorRef probe):
                    probe.Tell("timer fired");
                    break;
                case "silent":
                    break; // never answers: an ask to it times out
            }
        }
    }

    [Fact]
    public async Task An_actor_system_on_it_runs_actor_timers_and_ask_timeouts()
    {
        var actor = Sys.ActorOf(Props.Create(() => new TimerActor()));
        actor.Tell(("arm", TestActor));
        ExpectMsg("timer fired", Bound);
        ExpectNoMsg(TimeSpan.FromMilliseconds(400)); // the replaced 200 ms timer does not fire
        await Assert.ThrowsAsync<AskTimeoutException>(() => actor.Ask<object>("silent", TimeSpan.FromMilliseconds(100)));
        AwaitCondition(() => Pending == 0, Bound);
    }
}
