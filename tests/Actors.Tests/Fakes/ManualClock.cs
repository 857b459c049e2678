using Firezone.Actors.Actors.Time;

namespace Firezone.Actors.Actors.Tests.Fakes;

/// <summary>A clock moved by hand, together with the TestScheduler (see ActorTestBase.AdvanceTime).</summary>
public sealed class ManualClock(TimeSpan start) : IMonotonicClock
{
    private long _ticks = start.Ticks;

    public TimeSpan Now => TimeSpan.FromTicks(Interlocked.Read(ref _ticks));

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
