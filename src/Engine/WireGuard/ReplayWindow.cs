namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// The sliding anti-replay window of RFC 6479 (as in wireguard-go's replay.Filter and the kernel's
/// counter.c): a ring of 128 64-bit blocks. Moving the window forward clears whole blocks instead
/// of shifting bits, so any counter up to (128 - 1) * 64 = 8128 behind the highest one seen is
/// accepted once (whitepaper section 5.4.6 asks for a window; the issue asks for at least 2048).
/// Allocation-free; one per keypair, used by its single owner.
/// </summary>
public sealed class ReplayWindow
{
    private const int BlockBitLog = 6;
    private const int BlockBits = 1 << BlockBitLog;
    private const int RingBlocks = 1 << 7;
    private const int BlockMask = RingBlocks - 1;
    private const int BitMask = BlockBits - 1;

    /// <summary>How far behind the highest counter a counter may be and still be accepted.</summary>
    public const ulong WindowSize = (RingBlocks - 1) * BlockBits;

    private readonly ulong[] _ring = new ulong[RingBlocks];
    private ulong _last;

    public void Reset()
    {
        _last = 0;
        Array.Clear(_ring);
    }

    /// <summary>True when <paramref name="counter"/> would be accepted; changes nothing (checked before decrypting).</summary>
    public bool WouldAccept(ulong counter, ulong limit)
    {
        if (counter >= limit)
        {
            return false;
        }
        if (counter > _last)
        {
            return true;
        }
        if (_last - counter > WindowSize)
        {
            return false;
        }
        return (_ring[(int)((counter >> BlockBitLog) & BlockMask)] & (1UL << (int)(counter & BitMask))) == 0;
    }

    /// <summary>
    /// Marks <paramref name="counter"/> as seen. False when it is at or beyond <paramref name="limit"/>,
    /// too old for the window, or already seen. Call only for authenticated messages.
    /// </summary>
    public bool TryAccept(ulong counter, ulong limit)
    {
        if (counter >= limit)
        {
            return false;
        }
        ulong indexBlock = counter >> BlockBitLog;
        if (counter > _last)
        {
            ulong current = _last >> BlockBitLog;
            ulong diff = indexBlock - current;
            if (diff > RingBlocks)
            {
                diff = RingBlocks; // the whole ring is stale
            }
            for (ulong i = current + 1; i <= current + diff; i++)
            {
                _ring[(int)(i & BlockMask)] = 0;
            }
            _last = counter;
        }
        else if (_last - counter > WindowSize)
        {
            return false;
        }
        int block = (int)(indexBlock & BlockMask);
        ulong bit = 1UL << (int)(counter & BitMask);
        ulong old = _ring[block];
        _ring[block] = old | bit;
        return (old & bit) == 0;
    }
}
