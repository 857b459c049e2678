using System.Numerics;

namespace Firezone.Actors.Engine.Routing;

/// <summary>
/// One node of the path-compressed binary trie behind <see cref="AllowedIps{T}"/>, shaped like
/// <c>struct allowedips_node</c> in the Linux kernel's allowedips.c. An address is held left-aligned
/// in 128 bits (<see cref="Hi"/>, <see cref="Lo"/>): an IPv4 address sits in the top 32 bits of
/// <see cref="Hi"/>, so both families share one code path and differ only in <see cref="Bits"/>.
/// </summary>
/// <remarks>
/// Readers walk the trie without a lock while one writer edits it, as the kernel does under RCU:
/// a node is fully built before a child slot or root is pointed at it (with a release write), a node
/// that leaves the trie keeps its children so a reader standing on it still finds its way down, and
/// nodes are never reused (the garbage collector plays the part of the RCU grace period).
/// </remarks>
internal sealed class AllowedIpsNode<T> where T : notnull
{
    public AllowedIpsNode(ulong hi, ulong lo, int cidr, int bits)
    {
        Cidr = (byte)cidr;
        Bits = (byte)bits;
        MaskHi = cidr == 0 ? 0 : cidr >= 64 ? ulong.MaxValue : ulong.MaxValue << (64 - cidr);
        MaskLo = cidr <= 64 ? 0 : cidr == 128 ? ulong.MaxValue : ulong.MaxValue << (128 - cidr);
        Hi = hi & MaskHi;
        Lo = lo & MaskLo;
        // The bit that picks the child is the first bit after the prefix (the kernel's bit_at_a/bit_at_b).
        // A node with Cidr == Bits has no children, so its choose mask stays zero.
        if (cidr < bits)
        {
            ChooseHi = cidr < 64 ? 1UL << (63 - cidr) : 0;
            ChooseLo = cidr >= 64 ? 1UL << (127 - cidr) : 0;
        }
    }

    // Read on every lookup: kept together at the top.
    public readonly ulong Hi;
    public readonly ulong Lo;
    public readonly ulong MaskHi;
    public readonly ulong MaskLo;
    public readonly ulong ChooseHi;
    public readonly ulong ChooseLo;
    public AllowedIpsNode<T>? Child0;
    public AllowedIpsNode<T>? Child1;

    /// <summary>The owner, or null for an intermediate (branching) node. A reference, so a reader never sees a torn value.</summary>
    public AllowedIpsOwner<T>? Owner;

    public readonly byte Cidr;
    public readonly byte Bits;

    // Writer-only bookkeeping (the kernel's parent_bit_packed and peer_list).

    /// <summary>Null for a root.</summary>
    public AllowedIpsNode<T>? Parent;

    /// <summary>Which child slot of <see cref="Parent"/> holds this node (0 or 1); 2 for a root.</summary>
    public byte ParentBit;

    /// <summary>The prefix as inserted (null for an intermediate node), handed back by PrefixesOf.</summary>
    public IpPrefix? Prefix;

    /// <summary>Neighbours in the owner's insertion-ordered list of nodes.</summary>
    public AllowedIpsNode<T>? PreviousOfOwner;
    public AllowedIpsNode<T>? NextOfOwner;

    public bool PrefixMatches(ulong hi, ulong lo) => (((hi ^ Hi) & MaskHi) | ((lo ^ Lo) & MaskLo)) == 0;

    public AllowedIpsNode<T>? Choose(ulong hi, ulong lo) => ((hi & ChooseHi) | (lo & ChooseLo)) == 0 ? Child0 : Child1;

    public int ChooseBit(ulong hi, ulong lo) => ((hi & ChooseHi) | (lo & ChooseLo)) == 0 ? 0 : 1;

    public AllowedIpsNode<T>? ChildAt(int bit) => bit == 0 ? Child0 : Child1;

    /// <summary>Points child slot <paramref name="bit"/> at <paramref name="child"/> with release semantics (rcu_assign_pointer).</summary>
    public void SetChild(int bit, AllowedIpsNode<T>? child)
    {
        if (bit == 0)
        {
            Volatile.Write(ref Child0, child);
        }
        else
        {
            Volatile.Write(ref Child1, child);
        }
    }

    /// <summary>Number of leading bits this node's prefix shares with the key, capped at <see cref="Bits"/>.</summary>
    public int CommonBits(ulong hi, ulong lo)
    {
        ulong x = hi ^ Hi;
        int common = x != 0 ? BitOperations.LeadingZeroCount(x) : 64 + BitOperations.LeadingZeroCount(lo ^ Lo);
        return Math.Min(common, Bits);
    }
}

/// <summary>
/// A value that owns prefixes, with the head and tail of its insertion-ordered node list (the
/// kernel's <c>peer->allowedips_list</c>) so RemoveAll and PrefixesOf cost the owner's prefix count.
/// </summary>
internal sealed class AllowedIpsOwner<T>(T value) where T : notnull
{
    public readonly T Value = value;
    public AllowedIpsNode<T>? First;
    public AllowedIpsNode<T>? Last;
    public int Count;
}
