using System.Buffers.Binary;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.Routing;

public class IndexTableTests
{
    /// <summary>Yields the given 32-bit values in order (little-endian, as Allocate reads them), then repeats the last.</summary>
    private sealed class ScriptedRandom(params uint[] values) : IRandomSource
    {
        public int Calls { get; private set; }

        public void Fill(Span<byte> destination)
        {
            Assert.Equal(4, destination.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(destination, values[Math.Min(Calls, values.Length - 1)]);
            Calls++;
        }
    }

    private sealed class SeededRandom(int seed) : IRandomSource
    {
        private readonly Random _random = new(seed);

        public void Fill(Span<byte> destination) => _random.NextBytes(destination);
    }

    private static readonly WireGuardKey Alice = AllowedIpsTests.Key(1);
    private static readonly WireGuardKey Bob = AllowedIpsTests.Key(2);

    [Fact]
    public void Allocated_index_looks_up_its_owner_until_freed()
    {
        var table = new IndexTable();
        uint index = table.Allocate(Alice, new ScriptedRandom(0xDEADBEEF));
        Assert.Equal(0xDEADBEEFu, index);
        Assert.Equal(1, table.Count);
        Assert.True(table.TryLookup(index, out var owner));
        Assert.Equal(Alice, owner);
        Assert.False(table.TryLookup(index + 1, out _));
        table.Free(index);
        Assert.False(table.TryLookup(index, out _));
        Assert.Equal(0, table.Count);
        table.Free(index); // freeing twice is harmless
        Assert.Equal(0, table.Count);
    }

    [Fact]
    public void Colliding_random_values_are_retried()
    {
        var table = new IndexTable();
        Assert.Equal(7u, table.Allocate(Alice, new ScriptedRandom(7)));
        var random = new ScriptedRandom(7, 7, 7, 8);
        Assert.Equal(8u, table.Allocate(Bob, random));
        Assert.Equal(4, random.Calls);
        Assert.True(table.TryLookup(7, out var first));
        Assert.Equal(Alice, first);
        Assert.True(table.TryLookup(8, out var second));
        Assert.Equal(Bob, second);
    }

    [Fact]
    public void Zero_is_never_handed_out()
    {
        var table = new IndexTable();
        var random = new ScriptedRandom(0, 0, 5);
        Assert.Equal(5u, table.Allocate(Alice, random));
        Assert.Equal(3, random.Calls);
        Assert.False(table.TryLookup(0, out _));
    }

    [Fact]
    public void A_random_source_stuck_on_one_used_value_fails_with_a_clear_error()
    {
        var table = new IndexTable();
        table.Allocate(Alice, new ScriptedRandom(9));
        var stuck = new ScriptedRandom(9);
        var error = Assert.Throws<InvalidOperationException>(() => table.Allocate(Bob, stuck));
        Assert.Contains("random source", error.Message);
        Assert.Equal(IndexTable.MaxAllocationAttempts, stuck.Calls);
        Assert.Equal(1, table.Count);
    }

    [Fact]
    public void Many_allocations_are_unique_and_non_zero()
    {
        var table = new IndexTable();
        var random = new SeededRandom(3);
        var seen = new HashSet<uint>();
        for (int i = 0; i < 20_000; i++)
        {
            uint index = table.Allocate(i % 2 == 0 ? Alice : Bob, random);
            Assert.NotEqual(0u, index);
            Assert.True(seen.Add(index), $"index {index} handed out twice");
        }
        Assert.Equal(20_000, table.Count);
        foreach (uint index in seen)
        {
            Assert.True(table.TryLookup(index, out _));
        }
    }

    [Fact]
    public void Free_for_an_owner_only_frees_that_owners_index()
    {
        var table = new IndexTable();
        uint index = table.Allocate(Alice, new ScriptedRandom(11));
        Assert.False(table.Free(index, Bob));
        Assert.True(table.TryLookup(index, out _));
        Assert.True(table.Free(index, Alice));
        Assert.False(table.TryLookup(index, out _));
        Assert.Equal(0, table.Count);
    }

    [Fact]
    public void Concurrent_allocations_from_several_threads_are_unique()
    {
        var table = new IndexTable();
        var results = new uint[4][];
        var threads = new Thread[4];
        for (int t = 0; t < threads.Length; t++)
        {
            int id = t;
            threads[t] = new Thread(() =>
            {
                // A narrow 16-bit range forces collisions between threads, exercising TryAdd's race handling.
                var random = new NarrowRandom(id);
                results[id] = new uint[2000];
                for (int i = 0; i < 2000; i++)
                {
                    results[id][i] = table.Allocate(AllowedIpsTests.Key(id), random);
                }
            });
            threads[t].Start();
        }
        foreach (var thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromMinutes(1)));
        }
        var all = results.SelectMany(r => r).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
        Assert.Equal(8000, table.Count);
        for (int t = 0; t < threads.Length; t++)
        {
            foreach (uint index in results[t])
            {
                Assert.True(table.TryLookup(index, out var owner));
                Assert.Equal(AllowedIpsTests.Key(t), owner);
            }
        }
    }

    private sealed class NarrowRandom(int seed) : IRandomSource
    {
        private readonly Random _random = new(seed);

        public void Fill(Span<byte> destination)
        {
            destination.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(destination, (ushort)_random.Next(1, 1 << 16));
        }
    }

    [Fact]
    public void Lookups_do_not_allocate()
    {
        var table = new IndexTable();
        var random = new SeededRandom(5);
        var indices = new uint[1000];
        for (int i = 0; i < indices.Length; i++)
        {
            indices[i] = table.Allocate(Alice, random);
        }
        int found = 0;
        foreach (uint index in indices)
        {
            found += table.TryLookup(index, out _) ? 1 : 0;
        }
        int measured = 0;
        long allocated = SteadyStateAllocations.LeastOf(3, () =>
        {
            measured++;
            for (int round = 0; round < 10; round++)
            {
                foreach (uint index in indices)
                {
                    found += table.TryLookup(index, out _) ? 1 : 0;
                }
            }
        });
        Assert.Equal(0, allocated);
        Assert.Equal(1_000 + measured * 10_000, found);
    }
}
