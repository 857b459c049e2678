namespace Firezone.Actors.Actors.Batches;

/// <summary>
/// A small process-wide pool of empty batch objects of one type. Empty batches hold no buffers, so
/// sharing them between actor systems is harmless. Bounded so a burst does not pin memory forever.
/// </summary>
public static class BatchPool<T> where T : PacketBatch, new()
{
    private const int MaxPooled = 4096;
    private static readonly object Gate = new();
    private static readonly Stack<T> Free = new();

    public static T Rent()
    {
        lock (Gate)
        {
            if (Free.TryPop(out var batch))
            {
                return batch;
            }
        }
        return new T();
    }

    internal static void Return(T batch)
    {
        lock (Gate)
        {
            if (Free.Count < MaxPooled)
            {
                Free.Push(batch);
            }
        }
    }
}
