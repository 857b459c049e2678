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

    private static string[] Listed(AllowedIps<string> table, string owner) => table.PrefixesOf(owner).Select(p => p.ToString()).ToArray();

    [Fact]
    public void Lists_the_owners_prefixes_in_the_order_given_including_those_it_already_had()
    {
        // wg show lists them in the order wg set gave them, as wireguard-go does (it removes the
        // peer's prefixes and inserts the new list in order).
        var table = new AllowedIps<string>();
        table.ReplaceAll("a", [P("10.2.0.0/24")]);
        table.ReplaceAll("a", [P("10.1.0.0/24"), P("10.2.0.0/24")]);
        Assert.Equal(["10.1.0.0/24", "10.2.0.0/24"], Listed(table, "a"));

        table.ReplaceAll("b", [P("10.9.0.0/16")]);
        table.ReplaceAll("a", [P("fd00::/64"), P("10.2.0.0/24"), P("10.3.0.0/24"), P("10.1.0.0/24")]);
        Assert.Equal(["fd00::/64", "10.2.0.0/24", "10.3.0.0/24", "10.1.0.0/24"], Listed(table, "a"));

        // Reversed, with one dropped and one taken from another owner in the middle.
        table.ReplaceAll("a", [P("10.1.0.0/24"), P("10.9.0.0/16"), P("10.3.0.0/24"), P("fd00::/64")]);
        Assert.Equal(["10.1.0.0/24", "10.9.0.0/16", "10.3.0.0/24", "fd00::/64"], Listed(table, "a"));
        Assert.Empty(table.PrefixesOf("b"));
        Assert.Null(Lookup(table, "10.2.0.1"));
        Assert.Equal("a", Lookup(table, "10.9.1.1"));
        Assert.Equal(4, table.Count);
        table.CheckInvariants();
    }

    [Fact]
    public void A_prefix_listed_twice_is_kept_once_at_its_last_place()
    {
        // As in wireguard-go and the kernel, inserting a prefix the peer has moves it last.
        var table = new AllowedIps<string>();
        table.ReplaceAll("a", [P("10.1.0.0/24"), P("10.2.0.0/24"), P("10.1.0.0/24")]);
        Assert.Equal(["10.2.0.0/24", "10.1.0.0/24"], Listed(table, "a"));
        Assert.Equal(2, table.Count);

        // The same with prefixes it already had; host bits make no second prefix (wg clears them).
        table.ReplaceAll("a", [P("10.2.0.0/24"), P("10.1.0.9/24"), P("10.3.0.0/24"), P("10.2.0.7/24")]);
        Assert.Equal(["10.1.0.0/24", "10.3.0.0/24", "10.2.0.0/24"], Listed(table, "a"));
        Assert.Equal(3, table.Count);
        Assert.Equal(["10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"], table.Entries().Select(e => e.Prefix.ToString()));
        table.CheckInvariants();
    }

    [Fact]
    public void Reordering_kept_prefixes_never_hides_them_from_a_concurrent_reader()
    {
        // The same prefixes in another order (and one swapped): only the owner's list changes order,
        // so a lock-free lookup of a kept prefix never misses.
        var table = new AllowedIps<string>();
        IpPrefix[] forward = [P("10.0.0.0/8"), P("10.1.0.0/16"), P("10.1.2.0/24"), P("fd00::/64"), P("172.16.0.0/12")];
        IpPrefix[] backward = [P("192.168.0.0/16"), P("fd00::/64"), P("10.1.2.0/24"), P("10.1.0.0/16"), P("10.0.0.0/8")];
        table.ReplaceAll("peer", forward);
        byte[][] kept = [[10, 9, 9, 9], [10, 1, 9, 9], [10, 1, 2, 3], IPAddress.Parse("fd00::1").GetAddressBytes()];
        const int Rounds = 20_000;
        int misses = 0;
        int writerDone = 0;
        var reader = new Thread(() =>
        {
            while (Volatile.Read(ref writerDone) == 0)
            {
                foreach (var address in kept)
                {
                    if (!table.TryLookup(address, out _))
                    {
                        Interlocked.Increment(ref misses);
                    }
                }
            }
        });
        reader.Start();
        for (int i = 0; i < Rounds; i++)
        {
            table.ReplaceAll("peer", (i & 1) == 0 ? backward : forward);
        }
        Volatile.Write(ref writerDone, 1);
        Assert.True(reader.Join(TimeSpan.FromMinutes(1)));
        Assert.Equal(0, misses);
        Assert.Equal(forward.Select(p => p.ToString()), Listed(table, "peer"));
        table.ReplaceAll("peer", backward);
        Assert.Equal(backward.Select(p => p.ToString()), Listed(table, "peer"));
        table.CheckInvariants();
    }
}
