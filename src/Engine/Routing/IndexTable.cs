using System.Buffers.Binary;
using System.Collections.Concurrent;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Routing;

/// <summary>
/// Receiver index -> owning peer (whitepaper section 5.4.1: indices are random 32-bit values chosen
/// by the receiver). Thread-safe, allocation-free lookups.
/// </summary>
public sealed class IndexTable
{
    /// <summary>
    /// Attempts before <see cref="Allocate"/> gives up. With a working random source and even a million
    /// indices in use, a collision has odds of 1 in 4,000, so reaching this means the source is broken
    /// (for example, it returns a constant).
    /// </summary>
    public const int MaxAllocationAttempts = 1000;

    private readonly ConcurrentDictionary<uint, WireGuardKey> _owners = new();
    private int _count;

    /// <summary>Picks a fresh random index not in use and records its owner.</summary>
    /// <remarks>Zero is never handed out, so a zeroed field can mean "no index" (wireguard-go's index table does the same).</remarks>
    /// <exception cref="InvalidOperationException">The random source produced only used indices <see cref="MaxAllocationAttempts"/> times.</exception>
    public uint Allocate(WireGuardKey owner, IRandomSource random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Span<byte> bytes = stackalloc byte[sizeof(uint)];
        for (int attempt = 0; attempt < MaxAllocationAttempts; attempt++)
        {
            random.Fill(bytes);
            uint index = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
            if (index != 0 && _owners.TryAdd(index, owner))
            {
                Interlocked.Increment(ref _count);
                return index;
            }
        }
        throw new InvalidOperationException(
            $"IndexTable.Allocate: {MaxAllocationAttempts} random indices in a row were zero or already in use; the random source is not random");
    }

    /// <summary>
    /// Records <paramref name="owner"/> for an index another device's table handed out (a session
    /// taken over after a rebuild, <see cref="Peer.TakeOver"/>): true when the index is now
    /// <paramref name="owner"/>'s (also when it already was), false when it is zero or another's.
    /// </summary>
    public bool TryClaim(uint index, WireGuardKey owner)
    {
        if (index == 0)
        {
            return false;
        }
        if (_owners.TryAdd(index, owner))
        {
            Interlocked.Increment(ref _count);
            return true;
        }
        return _owners.TryGetValue(index, out var holder) && holder == owner;
    }

    public bool TryLookup(uint index, out WireGuardKey owner) => _owners.TryGetValue(index, out owner);

    /// <summary>Releases <paramref name="index"/>; freeing an index not in use does nothing.</summary>
    public void Free(uint index)
    {
        if (_owners.TryRemove(index, out _))
        {
            Interlocked.Decrement(ref _count);
        }
    }

    /// <summary>Releases <paramref name="index"/> only while <paramref name="owner"/> still holds it; true when it did.</summary>
    public bool Free(uint index, WireGuardKey owner)
    {
        if (_owners.TryRemove(new KeyValuePair<uint, WireGuardKey>(index, owner)))
        {
            Interlocked.Decrement(ref _count);
            return true;
        }
        return false;
    }

    public int Count => Volatile.Read(ref _count);
}
