using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// The per-source limit on handshake messages under load: once a message has proved its source
/// address with a valid mac2 (whitepaper section 5.3), each source may still send only
/// <see cref="PacketsPerSecond"/> a second, in bursts of at most <see cref="PacketsBurstable"/>, so
/// one host that answers its cookie replies cannot take all the Diffie-Hellman work of a tunnel
/// under load. A token bucket per source, as the kernel's <c>ratelimiter.c</c> and wireguard-go's
/// <c>ratelimiter</c> package (same rate, burst and one-second expiry). The source is the IPv4
/// address, or the /64 of an IPv6 address as the kernel keys it (wireguard-go keys the whole
/// address, which lets one host with a /64 have 2^64 buckets); the port does not count.
/// Written by hand: a token bucket over a dictionary, with these semantics, is in no library we use.
/// Thread-safe (one lock; only handshake messages under load come here, never transport data).
/// </summary>
public sealed class HandshakeRateLimiter
{
    /// <summary>Handshake messages a second one source may send on average under load.</summary>
    public const int PacketsPerSecond = 20;

    /// <summary>How many a source may send at once after a quiet spell.</summary>
    public const int PacketsBurstable = 5;

    /// <summary>More sources than this at once, and a new one is refused (the kernel bounds its table too).</summary>
    public const int MaxSources = 65536;

    /// <summary>A source not heard from for this long is forgotten; it starts again with a full burst.</summary>
    public static readonly TimeSpan ForgetAfter = TimeSpan.FromSeconds(1);

    // Tokens are ticks of time earned: one message costs a twentieth of a second.
    private const long PacketCost = TimeSpan.TicksPerSecond / PacketsPerSecond;
    private const long MaxTokens = PacketCost * PacketsBurstable;

    private readonly Dictionary<(ulong High, ulong Low), Bucket> _buckets = [];
    private readonly object _gate = new();
    private TimeSpan _lastSweep;

    /// <summary>Sources currently remembered (for tests and status).</summary>
    public int SourceCount
    {
        get
        {
            lock (_gate)
            {
                return _buckets.Count;
            }
        }
    }

    /// <summary>True when a handshake message from <paramref name="source"/> at <paramref name="now"/> is within its source's rate; it is then counted against it.</summary>
    public bool Allow(UdpEndpoint source, TimeSpan now)
    {
        var key = KeyOf(source);
        lock (_gate)
        {
            if (now - _lastSweep >= ForgetAfter)
            {
                Sweep(now);
            }
            if (!_buckets.TryGetValue(key, out var bucket))
            {
                if (_buckets.Count >= MaxSources)
                {
                    return false;
                }
                _buckets.Add(key, new Bucket { Tokens = MaxTokens - PacketCost, LastTicks = now.Ticks });
                return true;
            }
            bucket.Tokens = Math.Min(MaxTokens, bucket.Tokens + Math.Max(0, now.Ticks - bucket.LastTicks));
            bucket.LastTicks = Math.Max(bucket.LastTicks, now.Ticks);
            if (bucket.Tokens < PacketCost)
            {
                return false;
            }
            bucket.Tokens -= PacketCost;
            return true;
        }
    }

    /// <summary>
    /// Forgets the sources quiet for over a second, if a second has passed since the last sweep. The
    /// device calls it for every handshake message it sees, so the table empties after a flood also
    /// when no message comes under load any more (only those call <see cref="Allow"/>): wireguard-go
    /// sweeps every second on a timer, and the engine has no timer of its own.
    /// </summary>
    public void SweepIfDue(TimeSpan now)
    {
        lock (_gate)
        {
            if (_buckets.Count != 0 && now - _lastSweep >= ForgetAfter)
            {
                Sweep(now);
            }
        }
    }

    private void Sweep(TimeSpan now)
    {
        _lastSweep = now;
        foreach (var (key, bucket) in _buckets)
        {
            if (now.Ticks - bucket.LastTicks > ForgetAfter.Ticks)
            {
                _buckets.Remove(key); // allowed while enumerating a Dictionary since .NET Core 3.0
            }
        }
        if (_buckets.Count == 0)
        {
            _buckets.TrimExcess(); // a flood's capacity (up to MaxSources entries) goes with it
        }
    }

    private static (ulong High, ulong Low) KeyOf(UdpEndpoint source)
    {
        Span<byte> address = stackalloc byte[16];
        source.WriteIPv6(address);
        ulong high = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(address);
        ulong low = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(address[8..]);
        // IPv4 (held IPv4-mapped): the whole address. IPv6: its /64.
        return source.IsIPv4 ? (high, low) : (high, 0);
    }

    private sealed class Bucket
    {
        public long Tokens;
        public long LastTicks;
    }
}
