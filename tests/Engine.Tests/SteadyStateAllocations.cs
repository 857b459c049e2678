namespace Firezone.Actors.Engine.Tests;

/// <summary>
/// Managed bytes a piece of steady-state work allocates on the calling thread, as the least of a few
/// rounds. An allocation per call shows in every round; a one-off of the runtime's does not repeat
/// (a tiered recompilation's stub: 552 B once in CI, and 1 failure in about 10 loaded full runs of
/// PacketBufferPoolTests with a single measured round).
/// </summary>
internal static class SteadyStateAllocations
{
    public static long LeastOf(int rounds, Action work)
    {
        long least = long.MaxValue;
        for (int round = 0; round < rounds && least != 0; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            work();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }
}
