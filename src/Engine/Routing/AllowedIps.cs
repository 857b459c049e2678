using System.Buffers.Binary;
using System.Net;

namespace Firezone.Actors.Engine.Routing;

/// <summary>
/// Cryptokey routing table (whitepaper section 2): longest-prefix match over IPv4 and IPv6 prefixes,
/// each owned by one value (a peer). Thread-safe for one writer and many readers; lookups do not allocate.
/// </summary>
/// <remarks>
/// <para>A path-compressed binary trie per address family, the algorithm of the Linux kernel's
/// allowedips.c and wireguard-go's device/allowedips.go. Lookups take no lock: writers (serialized by a
/// private lock) only ever publish fully built nodes, so a reader sees the table either before or
/// after each edit (see <see cref="AllowedIpsNode{T}"/>). A lookup racing a change may return the old
/// owner, as in the kernel.</para>
/// <para>The families are separate, as in the kernel's allowedips.c and wireguard-go: a 4-byte address
/// is looked up in the IPv4 trie and a 16-byte one in the IPv6 trie only. An IPv4-mapped IPv6 address
/// (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2) is an IPv6 address here; treating it as IPv4 would let an
/// IPv6 packet pass the source check of (or be routed to) a peer that was only allowed IPv4.</para>
/// </remarks>
public sealed class AllowedIps<T> where T : notnull
{
    private readonly Lock _writeLock = new();
    private readonly Dictionary<T, AllowedIpsOwner<T>> _owners = [];
    private AllowedIpsNode<T>? _root4;
    private AllowedIpsNode<T>? _root6;
    private int _count;

    /// <summary>Number of prefixes in the table.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Adds or replaces the owner of <paramref name="prefix"/>.</summary>
    public void Insert(IpPrefix prefix, T value)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(value);
        ReadPrefix(prefix, out ulong hi, out ulong lo, out int bits);
        lock (_writeLock)
        {
            if (!_owners.TryGetValue(value, out var owner))
            {
                owner = new AllowedIpsOwner<T>(value);
                _owners.Add(value, owner);
            }
            Add(bits, hi, lo, prefix, owner);
        }
    }

    /// <summary>Removes <paramref name="prefix"/>, whoever owns it; false when it was not in the table.</summary>
    public bool Remove(IpPrefix prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ReadPrefix(prefix, out ulong hi, out ulong lo, out int bits);
        lock (_writeLock)
        {
            var node = NodePlacement(Root(bits), hi, lo, prefix.Length, out bool exact);
            if (!exact || node!.Owner is null)
            {
                return false;
            }
            RemoveNode(node);
            return true;
        }
    }

    /// <summary>Removes <paramref name="prefix"/> only while <paramref name="owner"/> owns it (wireguard-go's RemoveByPrefix for one peer).</summary>
    public bool Remove(IpPrefix prefix, T owner)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(owner);
        ReadPrefix(prefix, out ulong hi, out ulong lo, out int bits);
        lock (_writeLock)
        {
            var node = NodePlacement(Root(bits), hi, lo, prefix.Length, out bool exact);
            if (!exact || node!.Owner is not { } current || !EqualityComparer<T>.Default.Equals(current.Value, owner))
            {
                return false;
            }
            RemoveNode(node);
            return true;
        }
    }

    /// <summary>Removes every prefix owned by <paramref name="value"/>.</summary>
    public void RemoveAll(T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_writeLock)
        {
            if (!_owners.TryGetValue(value, out var owner))
            {
                return;
            }
            while (owner.First is { } node)
            {
                RemoveNode(node);
            }
        }
    }

    /// <summary>
    /// Makes <paramref name="prefixes"/> exactly the set owned by <paramref name="value"/>, as one edit
    /// under the writer lock: each listed prefix is taken over (from whichever peer owned it, as wg does:
    /// a prefix belongs to one peer), then the owner's prefixes no longer listed are removed. A prefix in
    /// both the old and the new set is never absent, so a lock-free lookup racing the change sees the old
    /// or the new owner, never "no route". Afterwards <see cref="PrefixesOf"/> lists them in the order
    /// given, as wireguard-go and the kernel do (they remove the peer's prefixes and insert the new ones
    /// in order, re-inserting moves a prefix last): a prefix listed twice takes its last place.
    /// Allocates (configuration path).
    /// </summary>
    public void ReplaceAll(T value, IReadOnlyList<IpPrefix> prefixes)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(prefixes);
        var keep = new HashSet<IpPrefix>(prefixes.Count);
        for (int i = 0; i < prefixes.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(prefixes[i]);
            keep.Add(prefixes[i]);
        }
        lock (_writeLock)
        {
            if (!_owners.TryGetValue(value, out var owner))
            {
                owner = new AllowedIpsOwner<T>(value);
                _owners.Add(value, owner);
            }
            var stale = new List<AllowedIpsNode<T>>();
            for (var node = owner.First; node is not null; node = node.NextOfOwner)
            {
                if (!keep.Contains(node.Prefix!))
                {
                    stale.Add(node);
                }
            }
            // In the order given, each prefix goes to the end of the owner's list: only that list's
            // order changes (it is read under the lock), not the trie, so no lookup misses a kept prefix.
            for (int i = 0; i < prefixes.Count; i++)
            {
                ReadPrefix(prefixes[i], out ulong hi, out ulong lo, out int bits);
                MoveToEndOfOwner(Add(bits, hi, lo, prefixes[i], owner));
            }
            foreach (var node in stale)
            {
                if (node.Owner == owner)
                {
                    RemoveNode(node);
                }
            }
        }
    }

    /// <summary>Removes every prefix.</summary>
    public void Clear()
    {
        lock (_writeLock)
        {
            Volatile.Write(ref _root4, null);
            Volatile.Write(ref _root6, null);
            // Nodes still reachable by an in-flight reader keep their owners: it may return a stale match, as any racing lookup may.
            _owners.Clear();
            Volatile.Write(ref _count, 0);
        }
    }

    /// <summary>
    /// Longest-prefix match of a 4-byte (IPv4) or 16-byte (IPv6) address in network order. A 16-byte
    /// address, IPv4-mapped or not, is matched against IPv6 prefixes only (see the remarks on the class).
    /// Any other length matches nothing.
    /// Takes no lock and allocates nothing.
    /// </summary>
    public bool TryLookup(ReadOnlySpan<byte> address, out T value)
    {
        AllowedIpsOwner<T>? found;
        if (address.Length == 4)
        {
            found = Find(Volatile.Read(ref _root4), (ulong)BinaryPrimitives.ReadUInt32BigEndian(address) << 32, 0, 32);
        }
        else if (address.Length == 16)
        {
            ulong hi = BinaryPrimitives.ReadUInt64BigEndian(address);
            ulong lo = BinaryPrimitives.ReadUInt64BigEndian(address[8..]);
            found = Find(Volatile.Read(ref _root6), hi, lo, 128);
        }
        else
        {
            found = null;
        }
        if (found is null)
        {
            value = default!;
            return false;
        }
        value = found.Value;
        return true;
    }

    /// <summary>Longest-prefix match of <paramref name="address"/> (allocates; for configuration and tests).</summary>
    public bool TryLookup(IPAddress address, out T value)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int written);
        return TryLookup(bytes[..written], out value);
    }

    /// <summary>
    /// The prefixes owned by <paramref name="value"/> in insertion order (for `wg show`; allocates):
    /// <see cref="ReplaceAll"/> gives its request's order.
    /// </summary>
    public IReadOnlyList<IpPrefix> PrefixesOf(T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_writeLock)
        {
            if (!_owners.TryGetValue(value, out var owner) || owner.Count == 0)
            {
                return [];
            }
            var prefixes = new List<IpPrefix>(owner.Count);
            for (var node = owner.First; node is not null; node = node.NextOfOwner)
            {
                prefixes.Add(node.Prefix!);
            }
            return prefixes;
        }
    }

    /// <summary>
    /// Every (prefix, owner) pair, IPv4 before IPv6, each family in address order with a shorter prefix
    /// before the longer ones inside it (for `wg show` and the UAPI `get`; allocates). A consistent snapshot.
    /// </summary>
    public IReadOnlyList<(IpPrefix Prefix, T Value)> Entries()
    {
        lock (_writeLock)
        {
            var entries = new List<(IpPrefix, T)>(_count);
            var stack = new Stack<AllowedIpsNode<T>>();
            foreach (var root in (ReadOnlySpan<AllowedIpsNode<T>?>)[_root4, _root6])
            {
                if (root is not null)
                {
                    stack.Push(root);
                }
                while (stack.TryPop(out var node))
                {
                    if (node.Owner is { } owner)
                    {
                        entries.Add((node.Prefix!, owner.Value));
                    }
                    if (node.Child1 is { } one)
                    {
                        stack.Push(one);
                    }
                    if (node.Child0 is { } zero)
                    {
                        stack.Push(zero);
                    }
                }
            }
            return entries;
        }
    }

    /// <summary>
    /// Walks both tries and throws when the structure is wrong: a child not inside its parent's prefix or in
    /// the wrong slot, a stale parent link, a branching node without two children (the trie would not be
    /// compressed), a node count that disagrees with <see cref="Count"/> or owner lists. Returns the node count.
    /// For tests.
    /// </summary>
    internal int CheckInvariants()
    {
        lock (_writeLock)
        {
            int nodes = 0;
            int owned = 0;
            var stack = new Stack<AllowedIpsNode<T>>();
            foreach (var root in (ReadOnlySpan<AllowedIpsNode<T>?>)[_root4, _root6])
            {
                if (root is null)
                {
                    continue;
                }
                if (root.Parent is not null || root.ParentBit != 2)
                {
                    throw new InvalidOperationException($"root {Describe(root)} has a parent link");
                }
                stack.Push(root);
                while (stack.TryPop(out var node))
                {
                    nodes++;
                    if (node.Owner is { } owner)
                    {
                        owned++;
                        if (node.Prefix is null || _owners.GetValueOrDefault(owner.Value) != owner)
                        {
                            throw new InvalidOperationException($"node {Describe(node)} has an owner that is not registered or no prefix");
                        }
                    }
                    else if (node.Child0 is null || node.Child1 is null)
                    {
                        throw new InvalidOperationException($"ownerless node {Describe(node)} does not branch");
                    }
                    for (int bit = 0; bit < 2; bit++)
                    {
                        if (node.ChildAt(bit) is not { } child)
                        {
                            continue;
                        }
                        if (child.Parent != node || child.ParentBit != bit || child.Bits != node.Bits || child.Cidr <= node.Cidr
                            || !node.PrefixMatches(child.Hi, child.Lo) || node.ChooseBit(child.Hi, child.Lo) != bit)
                        {
                            throw new InvalidOperationException($"child {Describe(child)} misplaced under {Describe(node)} slot {bit}");
                        }
                        stack.Push(child);
                    }
                }
            }
            int listed = 0;
            foreach (var owner in _owners.Values)
            {
                for (var node = owner.First; node is not null; node = node.NextOfOwner)
                {
                    listed++;
                    if (node.Owner != owner)
                    {
                        throw new InvalidOperationException($"node {Describe(node)} is in the wrong owner list");
                    }
                }
            }
            if (owned != _count || listed != _count)
            {
                throw new InvalidOperationException($"Count {_count}, owned nodes {owned}, listed nodes {listed}");
            }
            return nodes;
        }
    }

    private static string Describe(AllowedIpsNode<T> node) => $"{node.Hi:x16}{node.Lo:x16}/{node.Cidr} ({node.Bits} bits)";

    // The lookup loop: the kernel's find_node. Descends while the node's prefix matches, remembering the last owned node.
    private static AllowedIpsOwner<T>? Find(AllowedIpsNode<T>? node, ulong hi, ulong lo, int bits)
    {
        AllowedIpsOwner<T>? found = null;
        while (node is not null && node.PrefixMatches(hi, lo))
        {
            // Read once: a writer may clear it concurrently; what we read is a real (possibly just removed) owner.
            var owner = node.Owner;
            if (owner is not null)
            {
                found = owner;
            }
            if (node.Cidr == bits)
            {
                break;
            }
            node = node.Choose(hi, lo);
        }
        return found;
    }

    private static void ReadPrefix(IpPrefix prefix, out ulong hi, out ulong lo, out int bits)
    {
        Span<byte> bytes = stackalloc byte[16];
        prefix.Address.TryWriteBytes(bytes, out int written);
        if (written == 4)
        {
            hi = (ulong)BinaryPrimitives.ReadUInt32BigEndian(bytes) << 32;
            lo = 0;
            bits = 32;
        }
        else
        {
            hi = BinaryPrimitives.ReadUInt64BigEndian(bytes);
            lo = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
            bits = 128;
        }
    }

    private AllowedIpsNode<T>? Root(int bits) => bits == 32 ? _root4 : _root6;

    private void SetRoot(int bits, AllowedIpsNode<T>? node)
    {
        if (bits == 32)
        {
            Volatile.Write(ref _root4, node);
        }
        else
        {
            Volatile.Write(ref _root6, node);
        }
    }

    // The deepest node whose prefix contains (hi, lo)/cidr and is no longer than cidr; exact when it is that prefix (node_placement).
    private static AllowedIpsNode<T>? NodePlacement(AllowedIpsNode<T>? node, ulong hi, ulong lo, int cidr, out bool exact)
    {
        AllowedIpsNode<T>? parent = null;
        exact = false;
        while (node is not null && node.Cidr <= cidr && node.PrefixMatches(hi, lo))
        {
            parent = node;
            if (parent.Cidr == cidr)
            {
                exact = true;
                break;
            }
            node = parent.Choose(hi, lo);
        }
        return parent;
    }

    // Connects child under parent (or as the root when parent is null), in the slot its bits choose.
    // The child is complete before this release write makes it reachable.
    private void Connect(AllowedIpsNode<T>? parent, int bits, AllowedIpsNode<T> child)
    {
        if (parent is null)
        {
            child.Parent = null;
            child.ParentBit = 2;
            SetRoot(bits, child);
            return;
        }
        int bit = parent.ChooseBit(child.Hi, child.Lo);
        child.Parent = parent;
        child.ParentBit = (byte)bit;
        parent.SetChild(bit, child);
    }

    // The kernel's add(): insert or re-own, splitting an edge with a branching node where the new prefix diverges.
    // Returns the prefix's node.
    private AllowedIpsNode<T> Add(int bits, ulong hi, ulong lo, IpPrefix prefix, AllowedIpsOwner<T> owner)
    {
        int cidr = prefix.Length;
        var root = Root(bits);
        var node = NodePlacement(root, hi, lo, cidr, out bool exact);
        if (exact)
        {
            if (node!.Owner == owner)
            {
                node.Prefix = prefix;
                return node;
            }
            if (node.Owner is null)
            {
                _count++;
            }
            else
            {
                UnlinkFromOwner(node);
            }
            node.Prefix = prefix;
            LinkToOwner(node, owner);
            Volatile.Write(ref node.Owner, owner);
            return node;
        }

        var added = new AllowedIpsNode<T>(hi, lo, cidr, bits) { Prefix = prefix, Owner = owner };
        LinkToOwner(added, owner);
        _count++;

        AllowedIpsNode<T>? down;
        if (node is null)
        {
            down = root;
        }
        else
        {
            down = node.Choose(hi, lo);
            if (down is null)
            {
                Connect(node, bits, added);
                return added;
            }
        }
        if (down is null)
        {
            Connect(null, bits, added);
            return added;
        }

        var parent = node;
        int common = Math.Min(cidr, down.CommonBits(hi, lo));
        if (common == cidr)
        {
            // The new prefix contains down: it slots in between parent and down.
            Connect(added, bits, down);
            Connect(parent, bits, added);
            return added;
        }

        // The two diverge after `common` bits: a branching node with no owner takes both.
        var branch = new AllowedIpsNode<T>(hi, lo, common, bits);
        Connect(branch, bits, down);
        Connect(branch, bits, added);
        Connect(parent, bits, branch);
        return added;
    }

    // The kernel's remove_node(): clears the owner and removes the node (and a parent left as a useless branch) when that keeps the trie compressed.
    private void RemoveNode(AllowedIpsNode<T> node)
    {
        UnlinkFromOwner(node);
        Volatile.Write(ref node.Owner, null);
        node.Prefix = null;
        _count--;
        if (node.Child0 is not null && node.Child1 is not null)
        {
            return; // still a branching node
        }
        var child = node.Child0 ?? node.Child1;
        var parent = node.Parent;
        int parentBit = node.ParentBit;
        Replace(parent, parentBit, node.Bits, child);

        // A leaf went away: its parent, if it owns nothing, now has a single child and is dropped too.
        bool dropParent = child is null && parent is not null && parent.Owner is null;
        if (!dropParent)
        {
            return;
        }
        var sibling = parent!.ChildAt(1 - parentBit);
        Replace(parent.Parent, parent.ParentBit, parent.Bits, sibling);
    }

    // Puts child in the slot (parent, parentBit) (a root when parentBit is 2).
    private void Replace(AllowedIpsNode<T>? parent, int parentBit, int bits, AllowedIpsNode<T>? child)
    {
        if (child is not null)
        {
            child.Parent = parent;
            child.ParentBit = (byte)parentBit;
        }
        if (parentBit == 2)
        {
            SetRoot(bits, child);
        }
        else
        {
            parent!.SetChild(parentBit, child);
        }
    }

    private void LinkToOwner(AllowedIpsNode<T> node, AllowedIpsOwner<T> owner)
    {
        node.PreviousOfOwner = owner.Last;
        node.NextOfOwner = null;
        if (owner.Last is null)
        {
            owner.First = node;
        }
        else
        {
            owner.Last.NextOfOwner = node;
        }
        owner.Last = node;
        owner.Count++;
    }

    // Moves an owned node to the end of its owner's list, leaving the owner registered (unlike unlink and link).
    private static void MoveToEndOfOwner(AllowedIpsNode<T> node)
    {
        var owner = node.Owner!;
        if (owner.Last == node)
        {
            return;
        }
        // Not last, so it has a successor.
        if (node.PreviousOfOwner is null)
        {
            owner.First = node.NextOfOwner;
        }
        else
        {
            node.PreviousOfOwner.NextOfOwner = node.NextOfOwner;
        }
        node.NextOfOwner!.PreviousOfOwner = node.PreviousOfOwner;
        node.PreviousOfOwner = owner.Last;
        node.NextOfOwner = null;
        owner.Last!.NextOfOwner = node;
        owner.Last = node;
    }

    private void UnlinkFromOwner(AllowedIpsNode<T> node)
    {
        var owner = node.Owner!;
        if (node.PreviousOfOwner is null)
        {
            owner.First = node.NextOfOwner;
        }
        else
        {
            node.PreviousOfOwner.NextOfOwner = node.NextOfOwner;
        }
        if (node.NextOfOwner is null)
        {
            owner.Last = node.PreviousOfOwner;
        }
        else
        {
            node.NextOfOwner.PreviousOfOwner = node.PreviousOfOwner;
        }
        node.PreviousOfOwner = null;
        node.NextOfOwner = null;
        owner.Count--;
        if (owner.Count == 0)
        {
            // Forget owners with nothing left, so a table that sees many peers come and go does not grow.
            _owners.Remove(owner.Value);
        }
    }
}
