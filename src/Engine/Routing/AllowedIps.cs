namespace Firezone.Actors.Engine.Routing;

/// <summary>
/// Cryptokey routing table (whitepaper section 2): longest-prefix match over IPv4 and IPv6 prefixes,
/// each owned by one value (a peer). Thread-safe for one writer and many readers; lookups do not allocate.
/// </summary>
public sealed class AllowedIps<T> where T : notnull
{
    /// <summary>Adds or replaces the owner of <paramref name="prefix"/>.</summary>
    public void Insert(IpPrefix prefix, T value) => throw new NotImplementedException("issue 3");

    public bool Remove(IpPrefix prefix) => throw new NotImplementedException("issue 3");

    /// <summary>Removes every prefix owned by <paramref name="value"/>.</summary>
    public void RemoveAll(T value) => throw new NotImplementedException("issue 3");

    /// <summary>Longest-prefix match of a 4-byte (IPv4) or 16-byte (IPv6) address in network order.</summary>
    public bool TryLookup(ReadOnlySpan<byte> address, out T value) => throw new NotImplementedException("issue 3");

    /// <summary>The prefixes owned by <paramref name="value"/> (for `wg show`; allocates).</summary>
    public IReadOnlyList<IpPrefix> PrefixesOf(T value) => throw new NotImplementedException("issue 3");
}
