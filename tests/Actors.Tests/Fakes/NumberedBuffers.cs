using System.Buffers.Binary;
using Firezone.Actors.Actors.Batches;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Actors.Tests.Fakes;

/// <summary>Pooled buffers that carry only a number, for tests of how batches are grouped and ordered.</summary>
public static class NumberedBuffers
{
    /// <summary>A buffer from <paramref name="pool"/> holding <paramref name="number"/> (4 bytes).</summary>
    public static PacketBuffer Rent(PacketBufferPool pool, int number)
    {
        var buffer = pool.Rent();
        buffer.SetData(PacketBuffer.Headroom, 4);
        BinaryPrimitives.WriteInt32BigEndian(buffer.Data, number);
        return buffer;
    }

    /// <summary>The numbers in <paramref name="batch"/>, in order; its buffers go back to the pool and the batch is recycled.</summary>
    public static List<int> Drain(PacketBatch batch)
    {
        var numbers = new List<int>();
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch.Take(i) is { } buffer)
            {
                numbers.Add(BinaryPrimitives.ReadInt32BigEndian(buffer.Data));
                buffer.Return();
            }
        }
        batch.Recycle();
        return numbers;
    }
}
