namespace Firezone.Actors.Actors.Tests.Fakes;

/// <summary>How the fake devices block in WaitReadable: Monitor.Wait on their gate, with poll(2)'s timeout rule.</summary>
internal static class MonitorWait
{
    /// <summary>
    /// Waits on <paramref name="gate"/> (held by the caller) while <paramref name="blocked"/> is true,
    /// for at most <paramref name="timeoutMs"/> (-1: no limit, 0: just look). False on timeout.
    /// </summary>
    public static bool While(object gate, Func<bool> blocked, int timeoutMs)
    {
        long deadline = Environment.TickCount64 + Math.Max(timeoutMs, 0);
        while (blocked())
        {
            if (timeoutMs < 0)
            {
                Monitor.Wait(gate);
                continue;
            }
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return false;
            }
            Monitor.Wait(gate, (int)left);
        }
        return true;
    }
}
