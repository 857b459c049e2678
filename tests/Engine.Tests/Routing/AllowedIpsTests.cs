using System.Net;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.Routing;

public class AllowedIpsTests
{
    private static string? Lookup(AllowedIps<string> table, string address)
    {
        var bytes = IPAddress.Parse(address).GetAddressBytes();
        return table.TryLookup(bytes, out var owner) ? owner : null;
    }

    private static AllowedIps<string> Table(params (string Prefix, string Owner)[] entries)
    {
        var table = new AllowedIps<string>();
        foreach (var (prefix, owner) in entries)
        {
            table.Insert(IpPrefix.Parse(prefix), owner);
        }
        table.CheckInvariants();
        return table;
    }

    [Fact]
    public void Empty_table_matches_nothing()
    {
        var table = new AllowedIps<string>();
        Assert.Null(Lookup(table, "10.0.0.1"));
        Assert.Null(Lookup(table, "fd00::1"));
        Assert.Equal(0, table.Count);
        Assert.Empty(table.Entries());
        Assert.Empty(table.PrefixesOf("a"));
        Assert.False(table.Remove(IpPrefix.Parse("10.0.0.0/8")));
    }

    [Fact]
    public void Single_prefix_matches_inside_and_not_outside()
    {
        var table = Table(("10.1.2.0/24", "a"));
        Assert.Equal("a", Lookup(table, "10.1.2.0"));
        Assert.Equal("a", Lookup(table, "10.1.2.255"));
        Assert.Null(Lookup(table, "10.1.3.0"));
        Assert.Null(Lookup(table, "10.1.1.255"));
        Assert.Null(Lookup(table, "138.1.2.1"));
    }

    [Fact]
    public void Longest_of_overlapping_prefixes_wins_whatever_the_insert_order()
    {
        (string, string)[] entries = [("10.0.0.0/8", "a"), ("10.1.0.0/16", "b"), ("10.1.1.0/24", "c"), ("10.1.1.1/32", "d")];
        foreach (var order in new[] { entries, entries.Reverse().ToArray(), [entries[2], entries[0], entries[3], entries[1]] })
        {
            var table = Table(order);
            Assert.Equal("d", Lookup(table, "10.1.1.1"));
            Assert.Equal("c", Lookup(table, "10.1.1.2"));
            Assert.Equal("b", Lookup(table, "10.1.2.1"));
            Assert.Equal("a", Lookup(table, "10.2.0.0"));
            Assert.Null(Lookup(table, "11.0.0.0"));
            Assert.Equal(4, table.Count);
        }
    }

    [Fact]
    public void Default_routes_catch_everything_of_their_family_only()
    {
        var table = Table(("0.0.0.0/0", "v4"), ("::/0", "v6"), ("192.168.0.0/16", "lan"), ("fd00::/8", "ula"));
        Assert.Equal("v4", Lookup(table, "1.1.1.1"));
        Assert.Equal("v4", Lookup(table, "255.255.255.255"));
        Assert.Equal("v4", Lookup(table, "0.0.0.0"));
        Assert.Equal("lan", Lookup(table, "192.168.7.7"));
        Assert.Equal("v6", Lookup(table, "2001:db8::1"));
        Assert.Equal("v6", Lookup(table, "::"));
        Assert.Equal("v6", Lookup(table, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        Assert.Equal("ula", Lookup(table, "fd12::1"));
    }

    [Fact]
    public void IPv4_and_IPv6_tries_are_separate()
    {
        // 10.0.0.0/8 and 0a00::/8 share their first bits; neither may answer for the other family.
        var table = Table(("10.0.0.0/8", "v4"), ("a00::/8", "v6"));
        Assert.Equal("v4", Lookup(table, "10.0.0.1"));
        Assert.Equal("v6", Lookup(table, "a00::1"));
        Assert.Null(Lookup(table, "0.0.0.1"));
        table.Remove(IpPrefix.Parse("10.0.0.0/8"));
        Assert.Null(Lookup(table, "10.0.0.1"));
        Assert.Equal("v6", Lookup(table, "a00::1"));
        table = Table(("0.0.0.0/0", "v4"));
        Assert.Null(Lookup(table, "::1"));
        table = Table(("::/0", "v6"));
        Assert.Null(Lookup(table, "1.2.3.4"));
    }

    [Fact]
    public void Host_prefixes_match_exactly_one_address()
    {
        var table = Table(("10.0.0.1/32", "a"), ("10.0.0.2/32", "b"), ("fd00::1/128", "c"), ("fd00::2", "d"));
        Assert.Equal("a", Lookup(table, "10.0.0.1"));
        Assert.Equal("b", Lookup(table, "10.0.0.2"));
        Assert.Null(Lookup(table, "10.0.0.3"));
        Assert.Null(Lookup(table, "10.0.0.0"));
        Assert.Equal("c", Lookup(table, "fd00::1"));
        Assert.Equal("d", Lookup(table, "fd00::2"));
        Assert.Null(Lookup(table, "fd00::3"));
        Assert.Null(Lookup(table, "fd00::"));
    }

    [Fact]
    public void Inserting_an_existing_prefix_replaces_its_owner()
    {
        var table = Table(("10.0.0.0/24", "a"), ("10.0.1.0/24", "a"));
        table.Insert(IpPrefix.Parse("10.0.0.0/24"), "b");
        Assert.Equal("b", Lookup(table, "10.0.0.9"));
        Assert.Equal("a", Lookup(table, "10.0.1.9"));
        Assert.Equal(2, table.Count);
        Assert.Equal([IpPrefix.Parse("10.0.1.0/24")], table.PrefixesOf("a"));
        Assert.Equal([IpPrefix.Parse("10.0.0.0/24")], table.PrefixesOf("b"));
        table.CheckInvariants();
    }

    [Fact]
    public void Inserting_the_same_prefix_for_the_same_owner_is_idempotent()
    {
        var table = Table(("10.0.0.0/24", "a"), ("fd00::/64", "a"));
        table.Insert(IpPrefix.Parse("10.0.0.0/24"), "a");
        Assert.Equal(2, table.Count);
        Assert.Equal([IpPrefix.Parse("10.0.0.0/24"), IpPrefix.Parse("fd00::/64")], table.PrefixesOf("a"));
        table.RemoveAll("a");
        Assert.Equal(0, table.Count);
        Assert.Equal(0, table.CheckInvariants());
    }

    [Fact]
    public void Owner_that_lost_every_prefix_to_another_can_insert_again()
    {
        var table = Table(("10.0.0.0/24", "a"));
        table.Insert(IpPrefix.Parse("10.0.0.0/24"), "b");
        Assert.Empty(table.PrefixesOf("a"));
        table.Insert(IpPrefix.Parse("10.0.0.0/24"), "a");
        Assert.Equal("a", Lookup(table, "10.0.0.1"));
        Assert.Equal([IpPrefix.Parse("10.0.0.0/24")], table.PrefixesOf("a"));
        Assert.Empty(table.PrefixesOf("b"));
        table.CheckInvariants();
    }

    [Fact]
    public void Remove_falls_back_to_the_next_shorter_prefix()
    {
        var table = Table(("10.0.0.0/8", "a"), ("10.1.0.0/16", "b"), ("10.1.1.0/24", "c"));
        Assert.True(table.Remove(IpPrefix.Parse("10.1.0.0/16")));
        Assert.Equal("c", Lookup(table, "10.1.1.1"));
        Assert.Equal("a", Lookup(table, "10.1.2.1"));
        Assert.False(table.Remove(IpPrefix.Parse("10.1.0.0/16")));
        Assert.True(table.Remove(IpPrefix.Parse("10.0.0.0/8")));
        Assert.Null(Lookup(table, "10.1.2.1"));
        Assert.Equal("c", Lookup(table, "10.1.1.1"));
        Assert.Equal(1, table.Count);
        table.CheckInvariants();
    }

    [Fact]
    public void Removing_a_branching_point_that_was_never_inserted_removes_nothing()
    {
        // 10.0.0.0/24 and 10.0.1.0/24 meet at a branching node for 10.0.0.0/23.
        var table = Table(("10.0.0.0/24", "a"), ("10.0.1.0/24", "b"));
        Assert.Equal(3, table.CheckInvariants());
        Assert.False(table.Remove(IpPrefix.Parse("10.0.0.0/23")));
        Assert.False(table.Remove(IpPrefix.Parse("10.0.0.0/25")));
        Assert.Equal("a", Lookup(table, "10.0.0.1"));
        Assert.Equal("b", Lookup(table, "10.0.1.1"));
        Assert.Equal(2, table.Count);
    }

    [Fact]
    public void Remove_for_an_owner_leaves_other_owners_prefixes_alone()
    {
        var table = Table(("10.0.0.0/24", "a"));
        Assert.False(table.Remove(IpPrefix.Parse("10.0.0.0/24"), "b"));
        Assert.Equal("a", Lookup(table, "10.0.0.1"));
        Assert.True(table.Remove(IpPrefix.Parse("10.0.0.0/24"), "a"));
        Assert.Null(Lookup(table, "10.0.0.1"));
    }

    [Fact]
    public void RemoveAll_removes_one_owner_and_keeps_the_trie_compressed()
    {
        var table = Table(
            ("10.0.0.0/24", "a"), ("10.0.1.0/24", "b"), ("10.0.2.0/24", "a"), ("10.0.0.0/16", "b"),
            ("fd00::/64", "a"), ("fd00:0:0:1::/64", "b"), ("0.0.0.0/0", "a"));
        table.RemoveAll("a");
        Assert.Equal("b", Lookup(table, "10.0.0.1"));
        Assert.Equal("b", Lookup(table, "10.0.1.1"));
        Assert.Equal("b", Lookup(table, "10.0.2.1"));
        Assert.Null(Lookup(table, "11.0.0.1"));
        Assert.Null(Lookup(table, "fd00::1"));
        Assert.Equal("b", Lookup(table, "fd00:0:0:1::1"));
        Assert.Empty(table.PrefixesOf("a"));
        Assert.Equal(3, table.Count);
        // Only the three owned nodes remain: every branching node lost a side and was folded away.
        Assert.Equal(3, table.CheckInvariants());
        table.RemoveAll("b");
        Assert.Equal(0, table.Count);
        Assert.Equal(0, table.CheckInvariants());
        table.RemoveAll("nobody");
    }

    [Fact]
    public void Host_bits_are_cleared_on_insert_and_remove()
    {
        var table = new AllowedIps<string>();
        table.Insert(IpPrefix.Parse("10.1.2.3/24"), "a");
        table.Insert(IpPrefix.Parse("fd00::1:2:3/64"), "a");
        Assert.Equal(["10.1.2.0/24", "fd00::/64"], table.PrefixesOf("a").Select(p => p.ToString()));
        Assert.Equal("a", Lookup(table, "10.1.2.200"));
        Assert.True(table.Remove(IpPrefix.Parse("10.1.2.99/24")));
        Assert.True(table.Remove(IpPrefix.Parse("fd00::ffff/64")));
        Assert.Equal(0, table.Count);
    }

    [Fact]
    public void IPv4_mapped_IPv6_addresses_match_only_IPv6_prefixes()
    {
        // As the kernel and wireguard-go: a 16-byte address is looked up in the IPv6 trie only, so a peer
        // allowed only 10.0.0.0/8 is never the route for (or the accepted source of) ::ffff:10.1.2.3.
        var table = Table(("10.0.0.0/8", "v4"), ("::/0", "v6"), ("::ffff:192.168.0.0/112", "mapped"));
        Assert.Equal("v6", Lookup(table, "::ffff:10.1.2.3"));
        Assert.Equal("v4", Lookup(table, "10.1.2.3"));
        Assert.Equal("v6", Lookup(table, "::ffff:11.0.0.1"));
        // A mapped prefix stays IPv6: it matches mapped addresses, never the IPv4 address it spells.
        Assert.Equal("mapped", Lookup(table, "::ffff:192.168.5.5"));
        Assert.Null(Lookup(Table(("::ffff:192.168.0.0/112", "mapped")), "192.168.5.5"));
        Assert.Equal(["::ffff:192.168.0.0/112"], table.PrefixesOf("mapped").Select(p => p.ToString()));
        Assert.Equal("v6", Lookup(table, "::10.1.2.3"));
        Assert.Equal("v6", Lookup(table, "64:ff9b::10.1.2.3"));
        var noV6 = Table(("10.0.0.0/8", "v4"));
        Assert.Null(Lookup(noV6, "::ffff:10.1.2.3"));
        Assert.Null(Lookup(noV6, "::1"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(15)]
    [InlineData(17)]
    public void Addresses_of_other_lengths_match_nothing(int length)
    {
        var table = Table(("0.0.0.0/0", "v4"), ("::/0", "v6"));
        Assert.False(table.TryLookup(new byte[length], out _));
    }

    [Fact]
    public void PrefixesOf_lists_in_insertion_order_and_a_replaced_prefix_moves_last()
    {
        var table = Table(("10.0.0.3/32", "a"), ("fd00::/8", "a"), ("10.0.0.1/32", "a"), ("10.0.0.2/32", "a"));
        Assert.Equal(["10.0.0.3/32", "fd00::/8", "10.0.0.1/32", "10.0.0.2/32"], table.PrefixesOf("a").Select(p => p.ToString()));
        table.Insert(IpPrefix.Parse("fd00::/8"), "b");
        table.Insert(IpPrefix.Parse("fd00::/8"), "a");
        Assert.Equal(["10.0.0.3/32", "10.0.0.1/32", "10.0.0.2/32", "fd00::/8"], table.PrefixesOf("a").Select(p => p.ToString()));
    }

    [Fact]
    public void Entries_lists_every_prefix_IPv4_first_in_address_order()
    {
        var table = Table(
            ("fd00::/8", "c"), ("10.0.1.0/24", "b"), ("0.0.0.0/0", "a"), ("10.0.0.0/24", "a"), ("10.0.0.0/16", "c"),
            ("::/0", "b"), ("192.168.1.1/32", "b"));
        Assert.Equal(
            ["0.0.0.0/0=a", "10.0.0.0/16=c", "10.0.0.0/24=a", "10.0.1.0/24=b", "192.168.1.1/32=b", "::/0=b", "fd00::/8=c"],
            table.Entries().Select(e => $"{e.Prefix}={e.Value}"));
    }

    [Fact]
    public void Clear_empties_the_table_and_it_stays_usable()
    {
        var table = Table(("10.0.0.0/8", "a"), ("::/0", "b"));
        table.Clear();
        Assert.Equal(0, table.Count);
        Assert.Null(Lookup(table, "10.0.0.1"));
        Assert.Empty(table.PrefixesOf("a"));
        table.Insert(IpPrefix.Parse("10.0.0.0/8"), "a");
        Assert.Equal("a", Lookup(table, "10.0.0.1"));
        Assert.Equal(1, table.CheckInvariants());
    }

    [Fact]
    public void Lookup_by_IPAddress_matches_lookup_by_bytes()
    {
        var table = Table(("10.0.0.0/8", "a"), ("fd00::/8", "b"));
        Assert.True(table.TryLookup(IPAddress.Parse("10.9.9.9"), out var v4));
        Assert.Equal("a", v4);
        Assert.True(table.TryLookup(IPAddress.Parse("fd00::9%3"), out var v6));
        Assert.Equal("b", v6);
        Assert.False(table.TryLookup(IPAddress.Parse("11.0.0.0"), out _));
    }

    [Fact]
    public void Works_with_WireGuardKey_owners()
    {
        var alice = Key(1);
        var bob = Key(2);
        var table = new AllowedIps<WireGuardKey>();
        table.Insert(IpPrefix.Parse("10.0.0.0/8"), alice);
        table.Insert(IpPrefix.Parse("10.0.0.2/32"), bob);
        table.Insert(IpPrefix.Parse("fd00::2/128"), bob);
        Assert.True(table.TryLookup(IPAddress.Parse("10.0.0.2").GetAddressBytes(), out var owner));
        Assert.Equal(bob, owner);
        Assert.True(table.TryLookup(IPAddress.Parse("10.0.0.3").GetAddressBytes(), out owner));
        Assert.Equal(alice, owner);
        table.RemoveAll(Key(2));
        Assert.True(table.TryLookup(IPAddress.Parse("10.0.0.2").GetAddressBytes(), out owner));
        Assert.Equal(alice, owner);
        Assert.False(table.TryLookup(IPAddress.Parse("fd00::2").GetAddressBytes(), out _));
    }

    internal static WireGuardKey Key(int id)
    {
        var bytes = new byte[WireGuardKey.Size];
        BitConverter.TryWriteBytes(bytes, id);
        bytes[31] = 0x42;
        return new WireGuardKey(bytes);
    }

    [Fact]
    public void Lookups_do_not_allocate()
    {
        var table = new AllowedIps<WireGuardKey>();
        for (int i = 0; i < 1000; i++)
        {
            table.Insert(IpPrefix.Create(new IPAddress([10, 0, (byte)(i >> 8), (byte)i]), 32), Key(i));
            table.Insert(IpPrefix.Parse($"fd00::{i:x}/128"), Key(i));
        }
        byte[] v4 = [10, 0, 1, 7];
        byte[] v6 = IPAddress.Parse("fd00::107").GetAddressBytes();
        byte[] mapped = IPAddress.Parse("::ffff:10.0.1.7").GetAddressBytes();
        byte[] miss = IPAddress.Parse("2001:db8::1").GetAddressBytes();
        int found = 0;
        for (int i = 0; i < 100; i++)
        {
            found += Probe(table, v4, v6, mapped, miss);
        }
        int rounds = 0;
        long allocated = SteadyStateAllocations.LeastOf(3, () =>
        {
            rounds++;
            for (int i = 0; i < 10_000; i++)
            {
                found += Probe(table, v4, v6, mapped, miss);
            }
        });
        Assert.Equal(0, allocated);
        // v4 and v6 hit; the mapped address misses (no IPv6 prefix covers it) as does the plain miss.
        Assert.Equal((100 + rounds * 10_000) * 2, found);
    }

    private static int Probe(AllowedIps<WireGuardKey> table, byte[] v4, byte[] v6, byte[] mapped, byte[] miss)
    {
        int found = 0;
        found += table.TryLookup(v4, out _) ? 1 : 0;
        found += table.TryLookup(v6, out _) ? 1 : 0;
        found += table.TryLookup(mapped, out _) ? 1 : 0;
        found += table.TryLookup(miss, out _) ? 1 : 0;
        return found;
    }

    [Fact]
    public void Ten_thousand_peers_with_a_host_route_each_all_resolve()
    {
        var table = new AllowedIps<int>();
        for (int peer = 0; peer < 10_000; peer++)
        {
            table.Insert(IpPrefix.Create(new IPAddress([100, 64, (byte)(peer >> 8), (byte)peer]), 32), peer);
            table.Insert(IpPrefix.Parse($"fd00:2021::{peer:x}/128"), peer);
        }
        Assert.Equal(20_000, table.Count);
        Assert.Equal(2 * 20_000 - 2, table.CheckInvariants());
        for (int peer = 0; peer < 10_000; peer++)
        {
            Assert.True(table.TryLookup([100, 64, (byte)(peer >> 8), (byte)peer], out int v4));
            Assert.Equal(peer, v4);
            Assert.True(table.TryLookup(IPAddress.Parse($"fd00:2021::{peer:x}"), out int v6));
            Assert.Equal(peer, v6);
        }
        for (int peer = 0; peer < 10_000; peer += 2)
        {
            table.RemoveAll(peer);
        }
        Assert.Equal(10_000, table.Count);
        Assert.False(table.TryLookup([100, 64, 0, 2], out _));
        Assert.True(table.TryLookup([100, 64, 0, 3], out int odd));
        Assert.Equal(3, odd);
        table.CheckInvariants();
    }
}
