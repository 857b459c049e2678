using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// Which datagrams of a batch may share one GSO send (<see cref="LinuxUdpSocket.GsoGroupLength"/>):
/// the invariant of issue 8 and ECN.md, one GSO send carries one ECN codepoint (and one endpoint,
/// one segment size with only the last shorter), checked on fixed cases and on seeded random batches.
/// </summary>
public sealed class UdpGsoGroupingTests
{
    private static readonly UdpEndpoint A = UdpTestKit.Endpoint("::1", 1000);
    private static readonly UdpEndpoint B = UdpTestKit.Endpoint("127.0.0.1", 1000);

    [Fact]
    public void Runs_of_codepoints_become_separate_groups()
    {
        var pool = new PacketBufferPool(preallocate: 32);
        PacketBuffer[] batch = Batch(pool, [(Ecn.Ect0, 10), (Ecn.Ce, 3), (Ecn.Ect0, 5), (Ecn.NotEct, 4)], 1452, A);
        try
        {
            Assert.Equal([10, 3, 5, 4], Groups(batch, LinuxUdpSocket.MaxGsoSegments));
        }
        finally
        {
            ReturnAll(batch);
        }
    }

    [Fact]
    public void Alternating_codepoints_or_endpoints_are_never_grouped()
    {
        var pool = new PacketBufferPool(preallocate: 32);
        var batch = new PacketBuffer[16];
        for (int i = 0; i < batch.Length; i++)
        {
            // Even halves alternate codepoints with one endpoint, odd halves endpoints with one codepoint.
            batch[i] = i < 8
                ? UdpTestKit.Datagram(pool, i, 500, i % 2 == 0 ? Ecn.Ect0 : Ecn.Ce, A)
                : UdpTestKit.Datagram(pool, i, 500, Ecn.Ect0, i % 2 == 0 ? A : B);
        }
        try
        {
            Assert.All(Groups(batch, LinuxUdpSocket.MaxGsoSegments), g => Assert.Equal(1, g));
        }
        finally
        {
            ReturnAll(batch);
        }
    }

    [Fact]
    public void A_shorter_datagram_ends_a_group_and_a_longer_one_starts_a_new_one()
    {
        var pool = new PacketBufferPool(preallocate: 32);
        int[] lengths = [1000, 1000, 1000, 600, 1000, 1000, 1200, 1200, 0, 0, 1, 1];
        var batch = new PacketBuffer[lengths.Length];
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = UdpTestKit.Datagram(pool, i, lengths[i], Ecn.Ect1, A);
        }
        try
        {
            // [1000 x3, 600] [1000 x2] [1200 x2] [0] [0] [1 x2]: empty datagrams never group (gso_size 0).
            Assert.Equal([4, 2, 2, 1, 1, 2], Groups(batch, LinuxUdpSocket.MaxGsoSegments));
        }
        finally
        {
            ReturnAll(batch);
        }
    }

    [Fact]
    public void Groups_respect_the_segment_count_and_the_64_KiB_limits()
    {
        var pool = new PacketBufferPool(preallocate: 256);
        PacketBuffer[] small = Batch(pool, [(Ecn.Ect0, 150)], 100, A);
        PacketBuffer[] large = Batch(pool, [(Ecn.Ect0, 50)], 1452, A);
        try
        {
            Assert.Equal([64, 64, 22], Groups(small, LinuxUdpSocket.MaxGsoSegments));
            Assert.Equal([10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10], Groups(small, 10));
            int perSend = LinuxUdpSocket.MaxGsoBytes / 1452; // 45
            Assert.Equal([perSend, 50 - perSend], Groups(large, LinuxUdpSocket.MaxGsoSegments));
        }
        finally
        {
            ReturnAll(small);
            ReturnAll(large);
        }
    }

    [Fact]
    public void Random_batches_always_form_groups_with_one_codepoint_one_endpoint_and_one_segment_size()
    {
        var random = new Random(8);
        var pool = new PacketBufferPool(preallocate: 128);
        var batch = new PacketBuffer[100];
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = pool.Rent();
        }
        try
        {
            for (int trial = 0; trial < 500; trial++)
            {
                for (int i = 0; i < batch.Length; i++)
                {
                    // Few distinct values, so that runs (and mistakes) are likely.
                    batch[i].SetData(PacketBuffer.Headroom, random.Next(4) == 0 ? random.Next(0, 1452) : 1452);
                    batch[i].Ecn = (Ecn)(random.Next(5) == 0 ? random.Next(4) : 2);
                    batch[i].Endpoint = random.Next(6) == 0 ? B : A;
                }
                int maxSegments = random.Next(1, 80);
                int start = 0;
                while (start < batch.Length)
                {
                    int count = LinuxUdpSocket.GsoGroupLength(batch, start, maxSegments);
                    Assert.InRange(count, 1, Math.Max(1, maxSegments));
                    PacketBuffer first = batch[start];
                    int total = 0;
                    for (int i = start; i < start + count; i++)
                    {
                        Assert.Equal(first.Ecn, batch[i].Ecn);
                        Assert.Equal(first.Endpoint, batch[i].Endpoint);
                        if (i < start + count - 1)
                        {
                            Assert.Equal(first.Length, batch[i].Length);
                        }
                        else
                        {
                            Assert.InRange(batch[i].Length, count == 1 ? 0 : 1, first.Length);
                        }
                        total += batch[i].Length;
                    }
                    Assert.True(count == 1 || total <= LinuxUdpSocket.MaxGsoBytes);
                    start += count;
                }
            }
        }
        finally
        {
            ReturnAll(batch);
        }
        Assert.Equal(0, pool.Outstanding);
    }

    internal static PacketBuffer[] Batch(PacketBufferPool pool, (Ecn Ecn, int Count)[] runs, int length, UdpEndpoint destination)
    {
        var list = new List<PacketBuffer>();
        foreach (var (ecn, count) in runs)
        {
            for (int i = 0; i < count; i++)
            {
                list.Add(UdpTestKit.Datagram(pool, list.Count, length, ecn, destination));
            }
        }
        return [.. list];
    }

    private static List<int> Groups(PacketBuffer[] batch, int maxSegments)
    {
        var groups = new List<int>();
        int start = 0;
        while (start < batch.Length)
        {
            int count = LinuxUdpSocket.GsoGroupLength(batch, start, maxSegments);
            groups.Add(count);
            start += count;
        }
        return groups;
    }

    private static void ReturnAll(PacketBuffer[] batch)
    {
        foreach (var buffer in batch)
        {
            buffer.Return();
        }
    }
}
