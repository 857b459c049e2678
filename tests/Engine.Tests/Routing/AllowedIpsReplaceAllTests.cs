using System.Net;
using Firezone.Actors.Engine.Routing;

namespace Firezone.Actors.Engine.Tests.Routing;

/// <summary><see cref="AllowedIps{T}.ReplaceAll"/>: one owner's whole set changed as one edit.</summary>
public class AllowedIpsReplaceAllTests
{
    private static IpPrefix P(string text) => IpPrefix.Parse(text);

    private static string? Lookup(AllowedIps<string> table, string address) =>
        table.TryLookup(IPAddress.Parse(address).GetAddressBytes(), out var owner) ? owner : null;

    [Fact]
    public void Replaces_the_owners_set_and_takes_prefixes_from_other_owners()
    {
        var table = new AllowedIps<string>();
        table.ReplaceAll("a", [P("10.0.0.0/24"), P("10.0.1.0/24"), P("fd00::/64")]);
        table.ReplaceAll("b", [P("10.0.2.0/24")]);

        // b takes 10.0.1.0/24 from a (a prefix belongs to one peer), keeps its own, drops nothing of a's else.
        table.ReplaceAll("b", [P("10.0.2.0/24"), P("10.0.1.0/24")]);
        Assert.Equal("b", Lookup(table, "10.0.1.9"));
        Assert.Equal("a", Lookup(table, "10.0.0.9"));
        Assert.Equal(["10.0.0.0/24", "fd00::/64"], table.PrefixesOf("a").Select(p => p.ToString()));

        // a's new set: one kept, one dropped, one new.
        table.ReplaceAll("a", [P("fd00::/64"), P("192.168.0.0/16")]);
        Assert.Null(Lookup(table, "10.0.0.9"));
        Assert.Equal("a", Lookup(table, "192.168.3.3"));
        Assert.Equal("a", Lookup(table, "fd00::1"));
        Assert.Equal("b", Lookup(table, "10.0.1.9"));
        Assert.Equal(4, table.Count);

        table.ReplaceAll("a", []);
        Assert.Empty(table.PrefixesOf("a"));
        Assert.Equal(2, table.Count);
        table.CheckInvariants();
    }

    [Fact]
    public void A_prefix_kept_across_a_replace_is_never_missing_for_a_concurrent_reader()
    {
        // The old RemoveAll-then-Insert left a window with no route; ReplaceAll inserts before it removes.
        var table = new AllowedIps<string>();
        IpPrefix[] setA = [P("10.0.0.0/8"), P("10.1.0.0/16"), P("172.16.0.0/12")];
        IpPrefix[] setB = [P("10.0.0.0/8"), P("192.168.0.0/16"), P("10.1.2.0/24")];
        table.ReplaceAll("peer", setA);
        byte[] kept = [10, 9, 9, 9];
        byte[] movedInside = [10, 1, 2, 3]; // always inside 10.0.0.0/8, sometimes a longer prefix too
        const int Rounds = 20_000;
        int misses = 0;
        int writerDone = 0;
        var reader = new Thread(() =>
        {
            while (Volatile.Read(ref writerDone) == 0)
            {
                if (!table.TryLookup(kept, out _) || !table.TryLookup(movedInside, out _))
                {
                    Interlocked.Increment(ref misses);
                }
            }
        });
        reader.Start();
        for (int i = 0; i < Rounds; i++)
        {
            table.ReplaceAll("peer", (i & 1) == 0 ? setB : setA);
        }
        Volatile.Write(ref writerDone, 1);
        Assert.True(reader.Join(TimeSpan.FromMinutes(1)));
        Assert.Equal(0, misses);
        table.CheckInvariants();
    }
}
