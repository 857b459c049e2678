using System.Net;
using Firezone.Actors.Engine.Routing;

namespace Firezone.Actors.Engine.Tests.Routing;

/// <summary>
/// Lock-free readers racing one writer (the TUN reader thread looking up while configuration changes).
/// The writer edits only inside 172.16.0.0/12 and fd00::/8, so answers outside those are fixed; answers
/// inside may be old or new but must always be an owner that exists.
/// </summary>
public class AllowedIpsConcurrencyTests
{
    private const int Owners = 50;
    private const int WriterSteps = 40_000;

    [Fact]
    public void Readers_racing_a_writer_never_throw_and_only_see_real_owners()
    {
        var table = new AllowedIps<string>();
        var ownerNames = Enumerable.Range(0, Owners).Select(i => $"peer{i}").ToHashSet();
        table.Insert(IpPrefix.Parse("0.0.0.0/0"), "default4");
        table.Insert(IpPrefix.Parse("::/0"), "default6");
        table.Insert(IpPrefix.Parse("10.0.0.0/8"), "fixed4");
        table.Insert(IpPrefix.Parse("2001:db8::/32"), "fixed6");
        ownerNames.UnionWith(["default4", "default6"]);

        int writerDone = 0;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        long lookups = 0;

        void Reader(int seed)
        {
            var random = new Random(seed);
            var v4 = new byte[4];
            var v6 = new byte[16];
            long count = 0;
            try
            {
                // Bounded by the writer's fixed number of steps, plus a floor so every reader does real work.
                while (Volatile.Read(ref writerDone) == 0 || count < 10_000)
                {
                    random.NextBytes(v4);
                    random.NextBytes(v6);
                    v4[0] = 172;
                    v4[1] = (byte)(16 | (v4[1] & 0x0F));
                    v6[0] = 0xFD;
                    Check(v4, null);
                    Check(v6, null);
                    v4[0] = 10;
                    Check(v4, "fixed4");
                    v6[0] = 0x20;
                    v6[1] = 0x01;
                    v6[2] = 0x0D;
                    v6[3] = 0xB8;
                    Check(v6, "fixed6");
                    count += 4;
                }
            }
            catch (Exception e)
            {
                failures.Enqueue(e.ToString());
            }
            Interlocked.Add(ref lookups, count);

            void Check(byte[] address, string? expected)
            {
                if (!table.TryLookup(address, out var owner))
                {
                    failures.Enqueue($"{new IPAddress(address)} found no owner although a default route is always there");
                }
                else if (expected is not null ? owner != expected : !ownerNames.Contains(owner))
                {
                    failures.Enqueue($"{new IPAddress(address)} -> {owner}, expected {expected ?? "a known owner"}");
                }
            }
        }

        var readers = Enumerable.Range(1, 3).Select(seed => new Thread(() => Reader(seed))).ToArray();
        foreach (var reader in readers)
        {
            reader.Start();
        }
        try
        {
            var random = new Random(99);
            for (int step = 0; step < WriterSteps; step++)
            {
                IpPrefix prefix = random.Next(2) == 0
                    ? IpPrefix.Create(new IPAddress([172, (byte)(16 | random.Next(16)), (byte)random.Next(4), (byte)random.Next(256)]), 12 + random.Next(21))
                    : IpPrefix.Create(new IPAddress([0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (byte)random.Next(4), (byte)random.Next(256)]), 8 + random.Next(121));
                string owner = $"peer{random.Next(Owners)}";
                switch (random.Next(10))
                {
                    case < 6:
                        table.Insert(prefix, owner);
                        break;
                    case < 9:
                        table.Remove(prefix);
                        break;
                    default:
                        table.RemoveAll(owner);
                        break;
                }
            }
        }
        finally
        {
            Volatile.Write(ref writerDone, 1);
            foreach (var reader in readers)
            {
                Assert.True(reader.Join(TimeSpan.FromMinutes(2)), "a reader did not finish");
            }
        }
        Assert.Empty(failures);
        Assert.True(lookups >= 30_000);
        table.CheckInvariants();
    }
}
