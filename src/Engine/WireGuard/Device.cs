using System.Security.Cryptography;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.Routing;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// The local side shared by all peers (whitepaper: the interface): the static key pair, the
/// receiver-index table, the allowed-IPs table and the cookie checker. Thread-safe: the socket
/// reader routes by index, the TUN reader looks up allowed IPs, and each peer (one actor each)
/// allocates indices, all at once.
/// </summary>
/// <remarks>
/// Routing an incoming datagram to its peer (what the socket reader does, without decrypting data):
/// <see cref="MessageHeader.Classify"/> it, then
/// <list type="bullet">
/// <item>TransportData: <see cref="Indices"/>.TryLookup(receiver) gives the peer's public key; hand the
/// datagram to that peer's <see cref="Peer.HandleTransportData"/>.</item>
/// <item>Initiation: <see cref="AdmitHandshake"/> (send the cookie reply on SendCookie, drop on Reject),
/// then <see cref="TryIdentifyInitiator"/> gives the public key; <see cref="Peer.HandleHandshakeMessage"/>.</item>
/// <item>Response and CookieReply: <see cref="AdmitHandshake"/>, then route by receiver index like transport data;
/// <see cref="Peer.HandleHandshakeMessage"/>.</item>
/// <item>Invalid: drop.</item>
/// </list>
/// "Under load" is the caller's judgement (wireguard-go: the handshake queue is at least 1/8 full, and
/// for one second after). The <see cref="IRandomSource"/> is shared by every peer's thread, so it must be
/// thread-safe (<see cref="CryptoRandomSource"/> is).
/// </remarks>
public sealed class Device : IDisposable
{
    private readonly byte[] _privateKey = new byte[32];
    private readonly byte[] _publicKey = new byte[32];
    private readonly CookieChecker _cookieChecker;
    private readonly HandshakeRateLimiter _rateLimiter = new();

    /// <summary>The per-source limit under load (tests read its table).</summary>
    internal HandshakeRateLimiter RateLimiter => _rateLimiter;
    private readonly Func<DateTime>? _wallClock;

    /// <param name="privateKey">The interface's static private key.</param>
    /// <param name="pool">Where handshake messages, keepalives and cookie replies are rented from.</param>
    /// <param name="random">Ephemeral keys, indices, cookie secrets, jitter.</param>
    /// <param name="wallClockAtZero">Wall-clock time (UTC) at monotonic time zero. Without
    /// <paramref name="wallClock"/>, TAI64N timestamps are this plus <c>now</c>.</param>
    /// <param name="wallClock">
    /// The current wall-clock time, read for each initiation's TAI64N timestamp (whitepaper section
    /// 5.4.2) and for <see cref="Peer.LastHandshakeUtc"/>; the host passes it (e.g.
    /// <c>() =&gt; DateTime.UtcNow</c>), the engine reads no clock itself. It must return UTC (a
    /// <see cref="DateTimeKind.Local"/> time is converted, an unspecified one is taken as UTC) and
    /// be thread-safe (every peer's thread calls it). Why it matters: a responder accepts only an
    /// initiation newer than the last it saw (section 5.1), and <paramref name="wallClockAtZero"/>
    /// plus monotonic time never follows a clock that NTP corrects after start, so a clock that was
    /// behind would make every initiation look replayed; wireguard-go stamps each initiation with the
    /// current time. Null (deterministic tests): <paramref name="wallClockAtZero"/> plus <c>now</c>.
    /// </param>
    /// <param name="x25519">The DH implementation of every handshake of this device; null: <see cref="BouncyCastleX25519"/>.</param>
    /// <param name="transportAead">The AEAD of every transport data message; null: <see cref="DotNetTransportAead"/>.</param>
    public Device(WireGuardKey privateKey, PacketBufferPool pool, IRandomSource random, DateTime wallClockAtZero, Func<DateTime>? wallClock = null,
        IX25519? x25519 = null, ITransportAead? transportAead = null)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(random);
        privateKey.CopyTo(_privateKey);
        // Clamping is part of X25519 itself (RFC 7748 section 5); keeping the clamped form is harmless.
        Org.BouncyCastle.Math.EC.Rfc7748.X25519.ClampPrivateKey(_privateKey);
        X25519 = x25519 ?? BouncyCastleX25519.Instance;
        TransportAead = transportAead ?? DotNetTransportAead.Instance;
        X25519.PublicKey(_privateKey, _publicKey);
        StaticKey = X25519.CreatePrivateKey(_privateKey);
        PublicKey = new WireGuardKey(_publicKey);
        Pool = pool;
        Random = random;
        WallClockAtZero = AsUtc(wallClockAtZero);
        _wallClock = wallClock;
        Indices = new IndexTable();
        StagedBudget = StagedPacketBudget.ForPool(pool.MaxBuffers);
        AllowedIps = new AllowedIps<WireGuardKey>();
        _cookieChecker = new CookieChecker(_publicKey, random);
    }

    public WireGuardKey PublicKey { get; }

    /// <summary>
    /// When true, each <see cref="Peer"/> writes its configured allowed IPs into <see cref="AllowedIps"/>
    /// (on construction and <see cref="Peer.Update"/>) and removes them on dispose: for a standalone
    /// engine with no other writer (tests, simple embeddings). False by default: the table must have one
    /// writer (the actor layer's PeerSupervisor), or a restarted peer whose stale config still lists a
    /// prefix that moved to another peer would steal it back (a prefix belongs to one peer, whitepaper
    /// section 2).
    /// </summary>
    public bool PeersWriteAllowedIps { get; set; }

    public PacketBufferPool Pool { get; }

    /// <summary>How much of <see cref="Pool"/> the peers may hold while they wait for sessions.</summary>
    public StagedPacketBudget StagedBudget { get; }

    /// <summary>Local receiver index -> the public key of the peer that owns it (handshake or keypair).</summary>
    public IndexTable Indices { get; }

    /// <summary>Cryptokey routing: address -> peer public key, for outbound routing and the inbound source check.</summary>
    public AllowedIps<WireGuardKey> AllowedIps { get; }

    public IRandomSource Random { get; }

    /// <summary>Wall-clock time (UTC) at monotonic time zero: without a wall-clock source, the wall clock is this plus monotonic time.</summary>
    public DateTime WallClockAtZero { get; }

    /// <summary>
    /// The tunnel interface MTU, or 0 when unknown. Like the kernel and wireguard-go, transport
    /// padding (section 5.4.6) rounds up to 16 bytes but never beyond the MTU, so an MTU-sized inner
    /// packet still fits the path. With 0 every payload is padded to a multiple of 16.
    /// </summary>
    public int Mtu { get; set; }

    public DeviceCounters Counters { get; } = new();

    /// <summary>
    /// Forgets the static private key (its key object, and this copy). Only once nothing uses the
    /// device any more (its tunnel stopped): a later handshake would throw ObjectDisposedException.
    /// </summary>
    public void Dispose()
    {
        StaticKey.Dispose();
        CryptographicOperations.ZeroMemory(_privateKey);
    }

    /// <summary>The AEAD of every transport data message of this device's sessions.</summary>
    public ITransportAead TransportAead { get; }

    /// <summary>The X25519 implementation of this device's handshakes.</summary>
    public IX25519 X25519 { get; }

    /// <summary>The static private key as <see cref="X25519"/> computes with it (one DH per initiation received and per response consumed).</summary>
    internal X25519PrivateKey StaticKey { get; }

    internal ReadOnlySpan<byte> StaticPublic => _publicKey;

    /// <summary>
    /// Checks mac1 (and mac2 when <paramref name="underLoad"/>) of an initiation or response
    /// (whitepaper section 5.3). Under load, a message with a valid mac2 is also held to its source's
    /// rate (<see cref="HandshakeRateLimiter"/>: 20 a second, bursts of 5). On <see cref="HandshakeAdmission.SendCookie"/>,
    /// <paramref name="cookieReply"/> is a rented datagram addressed to the sender, owned by the caller.
    /// A cookie reply carries no MACs (its AEAD authenticates it at the peer) and is accepted when
    /// well-formed; anything else is rejected. The caller keeps <paramref name="datagram"/>.
    /// </summary>
    /// <param name="cookieReplyAllowed">False when the caller has no room to send another cookie reply
    /// (too many wait to be sent): an initiation that would get one is <see cref="HandshakeAdmission.Overloaded"/>
    /// instead, as when no buffer is free, so a flood cannot hold the pool's buffers in cookie replies.</param>
    public HandshakeAdmission AdmitHandshake(PacketBuffer datagram, bool underLoad, TimeSpan now, out PacketBuffer? cookieReply,
        bool cookieReplyAllowed = true)
    {
        cookieReply = null;
        _rateLimiter.SweepIfDue(now); // after a flood, its sources go at the next message (see SweepIfDue)
        ReadOnlySpan<byte> message = datagram.Data;
        switch (MessageHeader.Classify(message, out _))
        {
            case MessageType.CookieReply:
                return HandshakeAdmission.Accept;
            case MessageType.Initiation:
            case MessageType.Response:
                break;
            default:
                Interlocked.Increment(ref Counters.MalformedValue);
                return HandshakeAdmission.Reject;
        }
        if (!_cookieChecker.CheckMac1(message))
        {
            Interlocked.Increment(ref Counters.Mac1FailuresValue);
            return HandshakeAdmission.Reject;
        }
        if (!underLoad)
        {
            return HandshakeAdmission.Accept;
        }
        if (_cookieChecker.CheckMac2(message, datagram.Endpoint, now))
        {
            // The source has proved its address; it still gets only its share (the kernel's cookie.c).
            if (_rateLimiter.Allow(datagram.Endpoint, now))
            {
                return HandshakeAdmission.Accept;
            }
            Interlocked.Increment(ref Counters.RateLimitedValue);
            return HandshakeAdmission.RateLimited;
        }
        if (!cookieReplyAllowed || !Pool.TryRent(out var reply))
        {
            return HandshakeAdmission.Overloaded; // mac1 was fine: not a Reject, which means a bad mac1
        }
        reply.SetData(PacketBuffer.Headroom, MessageHeader.CookieReplySize);
        _cookieChecker.CreateReply(message, datagram.Endpoint, now, reply.Data);
        reply.Endpoint = datagram.Endpoint;
        reply.LocalAddress = datagram.LocalAddress;
        reply.Ecn = Ecn.NotEct;
        cookieReply = reply;
        Interlocked.Increment(ref Counters.CookieRepliesSentValue);
        return HandshakeAdmission.SendCookie;
    }

    /// <summary>
    /// Decrypts just enough of an initiation to learn the initiator's static public key, so the
    /// message can be routed to that peer's owner. False when it does not decrypt.
    /// </summary>
    public bool TryIdentifyInitiator(ReadOnlySpan<byte> initiation, out WireGuardKey initiatorPublicKey) =>
        TryIdentifyInitiator(initiation, null, out initiatorPublicKey);

    /// <summary>
    /// As <see cref="TryIdentifyInitiator(ReadOnlySpan{byte}, out WireGuardKey)"/> for the initiation in
    /// <paramref name="datagram"/>, and leaves what it decrypted in the buffer, so that the peer's
    /// <see cref="Peer.HandleHandshakeMessage"/> does not compute the same X25519 again (<see cref="InitiationStash"/>).
    /// </summary>
    public bool TryIdentifyInitiator(PacketBuffer datagram, out WireGuardKey initiatorPublicKey) =>
        TryIdentifyInitiator(datagram.Data, datagram, out initiatorPublicKey);

    private bool TryIdentifyInitiator(ReadOnlySpan<byte> initiation, PacketBuffer? stashIn, out WireGuardKey initiatorPublicKey)
    {
        initiatorPublicKey = default;
        if (MessageHeader.Classify(initiation, out _) != MessageType.Initiation)
        {
            return false;
        }
        Span<byte> chainKey = stackalloc byte[32];
        Span<byte> hash = stackalloc byte[32];
        Span<byte> remoteStatic = stackalloc byte[32];
        try
        {
            if (!Noise.TryConsumeInitiationStatic(initiation, StaticKey, _publicKey, chainKey, hash, remoteStatic))
            {
                return false;
            }
            initiatorPublicKey = new WireGuardKey(remoteStatic);
            if (stashIn is not null)
            {
                InitiationStash.Put(stashIn, this, chainKey, hash, remoteStatic);
            }
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(chainKey);
            CryptographicOperations.ZeroMemory(hash);
        }
    }

    /// <summary>
    /// The wall-clock time (UTC) at monotonic <paramref name="now"/>: the wall-clock source's current
    /// time when the device has one, else <see cref="WallClockAtZero"/> plus <paramref name="now"/>.
    /// </summary>
    internal DateTime WallClock(TimeSpan now) => _wallClock is { } source ? AsUtc(source()) : WallClockAtZero + now;

    private static DateTime AsUtc(DateTime time) => time.Kind == DateTimeKind.Local ? time.ToUniversalTime() : time;
}
