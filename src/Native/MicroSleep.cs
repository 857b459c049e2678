using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// A sleep of microseconds: <c>usleep(3)</c> (an hrtimer in the kernel). .NET's Thread.Sleep counts
/// whole milliseconds, ten times the pauses the reader threads take (see ReadModeration).
/// </summary>
public static class MicroSleep
{
    /// <summary>Sleeps about <paramref name="microseconds"/>; a signal may end it early, which only shortens the pause.</summary>
    public static void For(uint microseconds)
    {
        if (microseconds > 0)
        {
            _ = LibC.usleep(microseconds);
        }
    }
}
