using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Routing;

/// <summary>
/// Receiver index -> owning peer (whitepaper section 5.4.1: indices are random 32-bit values chosen
/// by the receiver). Thread-safe, allocation-free lookups.
/// </summary>
public sealed class IndexTable
{
    /// <summary>Picks a fresh random index not in use and records its owner.</summary>
    public uint Allocate(WireGuardKey owner, IRandomSource random) => throw new NotImplementedException("issue 3");

    public bool TryLookup(uint index, out WireGuardKey owner) => throw new NotImplementedException("issue 3");

    public void Free(uint index) => throw new NotImplementedException("issue 3");

    public int Count => throw new NotImplementedException("issue 3");
}
