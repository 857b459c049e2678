using System.Net;
using Firezone.Actors.Engine.Routing;

namespace Firezone.Actors.Engine.Tests.Routing;

/// <summary>
/// The trie against a naive model (a dictionary scanned in full for the longest containing prefix),
/// over random inserts, re-owns, removes and lookups, as wireguard-go's TestTrieRandom and the kernel's
/// randomized selftest do. Seeded so a failure replays.
/// </summary>
public class AllowedIpsModelTests
{
    private sealed class NaiveModel
    {
        public readonly Dictionary<IpPrefix, int> Owners = [];

        public int? Lookup(byte[] address)
        {
            int best = -1;
            int? owner = null;
            foreach (var (prefix, value) in Owners)
            {
                if (!prefix.Contains(address))
                {
                    continue;
                }
                // Contains only matches an address of the prefix's own family, so lengths compare directly.
                int length = prefix.Length;
                if (length > best)
                {
                    best = length;
                    owner = value;
                }
            }
            return owner;
        }
    }

    // Prefixes crowd into a small part of the address space (a few random top bits) so they overlap and share paths.
    private static byte[] RandomAddress(Random random, bool ipv4)
    {
        var bytes = new byte[ipv4 ? 4 : 16];
        random.NextBytes(bytes);
        switch (random.Next(4))
        {
            case 0:
                bytes[0] &= 0x03;
                break;
            case 1:
                bytes[0] = 10;
                bytes[1] &= 0x01;
                break;
            case 2:
                break;
            default:
                bytes[0] = 0xFD;
                break;
        }
        return bytes;
    }

    private static IpPrefix RandomPrefix(Random random)
    {
        bool ipv4 = random.Next(2) == 0;
        int max = ipv4 ? 32 : 128;
        // Favour host routes and short prefixes, like real configurations, but cover every length.
        int length = random.Next(5) switch
        {
            0 => max,
            1 => random.Next(0, 9),
            _ => random.Next(0, max + 1),
        };
        return IpPrefix.Create(new IPAddress(RandomAddress(random, ipv4)), length);
    }

    private static byte[] RandomLookupAddress(Random random, List<IpPrefix> known)
    {
        if (known.Count > 0 && random.Next(3) != 0)
        {
            // An address inside (or at the edge of) a prefix we inserted, host bits random.
            var prefix = known[random.Next(known.Count)];
            var bytes = prefix.Address.GetAddressBytes();
            var noise = new byte[bytes.Length];
            random.NextBytes(noise);
            for (int bit = prefix.Length; bit < bytes.Length * 8; bit++)
            {
                if ((noise[bit / 8] & (0x80 >> (bit % 8))) != 0)
                {
                    bytes[bit / 8] ^= (byte)(0x80 >> (bit % 8));
                }
            }
            if (prefix.IsIPv4 && random.Next(4) == 0)
            {
                return IPAddress.Parse("::ffff:" + new IPAddress(bytes)).GetAddressBytes();
            }
            return bytes;
        }
        return RandomAddress(random, random.Next(2) == 0);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void Trie_agrees_with_the_naive_model(int seed)
    {
        var random = new Random(seed);
        var table = new AllowedIps<int>();
        var model = new NaiveModel();
        var known = new List<IpPrefix>();
        const int Owners = 12;

        for (int step = 0; step < 3000; step++)
        {
            int action = random.Next(100);
            if (action < 55 || known.Count == 0)
            {
                var prefix = RandomPrefix(random);
                int owner = random.Next(Owners);
                table.Insert(prefix, owner);
                model.Owners[prefix] = owner;
                known.Add(prefix);
            }
            else if (action < 80)
            {
                // Remove one we know (maybe already gone) or a random one (usually absent).
                var prefix = random.Next(4) == 0 ? RandomPrefix(random) : known[random.Next(known.Count)];
                Assert.Equal(model.Owners.Remove(prefix), table.Remove(prefix));
            }
            else if (action < 85)
            {
                var prefix = known[random.Next(known.Count)];
                int owner = random.Next(Owners);
                bool owned = model.Owners.TryGetValue(prefix, out int current) && current == owner;
                if (owned)
                {
                    model.Owners.Remove(prefix);
                }
                Assert.Equal(owned, table.Remove(prefix, owner));
            }
            else if (action < 88)
            {
                int owner = random.Next(Owners);
                table.RemoveAll(owner);
                foreach (var prefix in model.Owners.Where(e => e.Value == owner).Select(e => e.Key).ToList())
                {
                    model.Owners.Remove(prefix);
                }
            }

            for (int probe = 0; probe < 8; probe++)
            {
                var address = RandomLookupAddress(random, known);
                int? expected = model.Lookup(address);
                bool found = table.TryLookup(address, out int actual);
                Assert.True(expected.HasValue == found && (!found || expected == actual),
                    $"seed {seed} step {step}: {new IPAddress(address)} -> trie {(found ? actual : "none")}, model {expected?.ToString() ?? "none"}");
            }
            Assert.Equal(model.Owners.Count, table.Count);
            if (step % 100 == 0)
            {
                CheckAgainstModel(table, model, Owners);
            }
        }
        CheckAgainstModel(table, model, Owners);
    }

    /// <summary>
    /// As <see cref="Trie_agrees_with_the_naive_model"/>, with the configuration edits between the
    /// single ones: ReplaceAll (the owner's set made exactly the list, taking prefixes over from other
    /// owners; lists with duplicates, with prefixes of other owners, empty) and Clear, then single
    /// inserts and removes again on the table those left. PrefixesOf keeps the order ReplaceAll gave.
    /// </summary>
    [Theory]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(33)]
    public void Trie_agrees_with_the_naive_model_through_replace_all_and_clear(int seed)
    {
        var random = new Random(seed);
        var table = new AllowedIps<int>();
        var model = new NaiveModel();
        var order = new Dictionary<int, List<IpPrefix>>(); // the owner's prefixes in PrefixesOf order, where known
        var known = new List<IpPrefix>();
        const int Owners = 6;

        for (int step = 0; step < 1500; step++)
        {
            int action = random.Next(100);
            if (action < 40 || known.Count == 0)
            {
                var prefix = RandomPrefix(random);
                int owner = random.Next(Owners);
                if (model.Owners.TryGetValue(prefix, out int previous))
                {
                    order.Remove(previous);
                }
                table.Insert(prefix, owner);
                model.Owners[prefix] = owner;
                order.Remove(owner);
                known.Add(prefix);
            }
            else if (action < 60)
            {
                var prefix = known[random.Next(known.Count)];
                if (model.Owners.TryGetValue(prefix, out int previous))
                {
                    order.Remove(previous);
                }
                Assert.Equal(model.Owners.Remove(prefix), table.Remove(prefix));
            }
            else if (action < 95)
            {
                int owner = random.Next(Owners);
                var list = new List<IpPrefix>();
                int count = random.Next(4) == 0 ? 0 : random.Next(1, 12);
                for (int i = 0; i < count; i++)
                {
                    // New prefixes, the owner's own, other owners', and the same one twice.
                    list.Add(random.Next(3) switch
                    {
                        0 => RandomPrefix(random),
                        1 when list.Count > 0 => list[random.Next(list.Count)],
                        _ => known.Count > 0 ? known[random.Next(known.Count)] : RandomPrefix(random),
                    });
                }
                table.ReplaceAll(owner, list);
                foreach (var (prefix, value) in model.Owners.Where(e => e.Value == owner).ToList())
                {
                    model.Owners.Remove(prefix);
                }
                foreach (var prefix in list)
                {
                    if (model.Owners.TryGetValue(prefix, out int previous) && previous != owner)
                    {
                        order.Remove(previous);
                    }
                    model.Owners[prefix] = owner;
                    known.Add(prefix);
                }
                // A prefix listed twice takes its last place.
                var expectedOrder = new List<IpPrefix>();
                foreach (var prefix in list)
                {
                    expectedOrder.Remove(prefix);
                    expectedOrder.Add(prefix);
                }
                order[owner] = expectedOrder;
            }
            else
            {
                table.Clear();
                model.Owners.Clear();
                order.Clear();
            }

            for (int probe = 0; probe < 8; probe++)
            {
                var address = RandomLookupAddress(random, known);
                int? expected = model.Lookup(address);
                bool found = table.TryLookup(address, out int actual);
                Assert.True(expected.HasValue == found && (!found || expected == actual),
                    $"seed {seed} step {step}: {new IPAddress(address)} -> trie {(found ? actual : "none")}, model {expected?.ToString() ?? "none"}");
            }
            Assert.Equal(model.Owners.Count, table.Count);
            foreach (var (owner, expectedOrder) in order)
            {
                Assert.Equal(expectedOrder.Select(p => p.ToString()), table.PrefixesOf(owner).Select(p => p.ToString()));
            }
            if (step % 50 == 0)
            {
                CheckAgainstModel(table, model, Owners);
            }
        }
        CheckAgainstModel(table, model, Owners);
    }

    private static void CheckAgainstModel(AllowedIps<int> table, NaiveModel model, int owners)
    {
        int nodes = table.CheckInvariants();
        // A compressed binary trie never has more than 2n - 1 nodes per family.
        Assert.True(nodes <= 2 * model.Owners.Count, $"{nodes} nodes for {model.Owners.Count} prefixes: the trie is not compressed");
        var entries = table.Entries();
        Assert.Equal(model.Owners.Count, entries.Count);
        foreach (var (prefix, value) in entries)
        {
            Assert.Equal(model.Owners[prefix], value);
        }
        for (int owner = 0; owner < owners; owner++)
        {
            var expected = model.Owners.Where(e => e.Value == owner).Select(e => e.Key.ToString()).Order();
            Assert.Equal(expected, table.PrefixesOf(owner).Select(p => p.ToString()).Order());
        }
    }

    [Fact]
    public void Removing_everything_in_random_order_leaves_an_empty_trie()
    {
        var random = new Random(42);
        var table = new AllowedIps<int>();
        var prefixes = new HashSet<IpPrefix>();
        for (int i = 0; i < 2000; i++)
        {
            var prefix = RandomPrefix(random);
            prefixes.Add(prefix);
            table.Insert(prefix, i % 7);
        }
        Assert.Equal(prefixes.Count, table.Count);
        foreach (var prefix in prefixes.OrderBy(_ => random.Next()))
        {
            Assert.True(table.Remove(prefix));
        }
        Assert.Equal(0, table.Count);
        Assert.Equal(0, table.CheckInvariants());
        Assert.Empty(table.Entries());
    }
}
