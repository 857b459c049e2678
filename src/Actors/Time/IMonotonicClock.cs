namespace Firezone.Actors.Actors.Time;

/// <summary>
/// The monotonic <c>now</c> the sans-IO engine is driven with (STYLE.md rule 1: the Engine never
/// reads a clock; the actors do, through this seam, so tests can move time by hand).
/// </summary>
public interface IMonotonicClock
{
    /// <summary>Time since an arbitrary fixed origin; never goes backwards.</summary>
    TimeSpan Now { get; }
}
