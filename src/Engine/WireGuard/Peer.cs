using System.Buffers.Binary;
using System.Security.Cryptography;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// One peer's protocol state machine, sans-IO (in the style of Firezone's snownet): handshake
/// (Noise IKpsk2), current/previous/next keypairs, replay window, timers. Single-threaded: exactly
/// one owner (a PeerConnection actor) calls it. Inputs: <see cref="HandleTunPacket"/>,
/// <see cref="HandleTransportData"/>, <see cref="HandleHandshakeMessage"/>, <see cref="HandleTimeout"/>.
/// Outputs: <see cref="PollTransmit"/>, <see cref="PollTimeout"/>. Time is the monotonic
/// <c>now</c> passed in; nothing here reads a clock.
/// </summary>
/// <remarks>
/// Driving it: after every Handle* call (and after <see cref="Connect"/> or <see cref="Update"/>),
/// drain <see cref="PollTransmit"/> and re-arm one timer at <see cref="PollTimeout"/>; when it fires,
/// call <see cref="HandleTimeout"/> with the current monotonic time, then drain and re-arm again.
/// The timers follow wireguard-go's timers.go (itself the kernel's timers.c), which implements
/// whitepaper section 6: retransmitHandshake, sendKeepalive, newHandshake, zeroKeyMaterial,
/// persistentKeepalive, kept here as deadlines instead of OS timers.
/// The peer writes its configured allowed IPs into <see cref="Device.AllowedIps"/> only when
/// <see cref="Device.PeersWriteAllowedIps"/> is set; otherwise the table's single writer (the supervisor) does.
/// </remarks>
public sealed partial class Peer : IDisposable
{
    private readonly Device _device;
    private PeerConfig _config;
    private UdpEndpoint _endpoint;
    // The local address the peer's last datagram arrived at: what we send from, so replies leave
    // from the address the peer contacted (a Gateway with several addresses). None until then, and
    // again after a configured endpoint replaces a learned one (the kernel picks).
    private UdpEndpoint _localAddress;
    // The remote static key and the preshared key are read from _config where a handshake needs
    // them; DH(Spriv_i, Spub_r), the cookie generator (two derived keys) and the counters are made
    // at first use: most of a Gateway's configured peers stay idle (issue 8, item 4), and the
    // Curve25519 operation was most of the cost of adding a peer.
    private byte[]? _precomputedStaticStatic;
    private Handshake _handshake = new(); // replaced only by TakeOver
    private CookieGenerator? _cookieGenerator;
    private PeerCounters? _counters;

    // Whitepaper section 6.1 and wireguard-go's Keypairs: `next` is a responder's keypair awaiting
    // confirmation by the initiator's first transport message; until then it must not send with it.
    private Keypair? _current;
    private Keypair? _previous;
    private Keypair? _next;

    // Packets held until a session exists (ring buffer, oldest dropped when full). Allocated at the
    // first staged packet: most of a Gateway's 10,000 configured peers are idle and never stage one.
    private PacketBuffer?[]? _staged;
    private int _stagedHead;
    private int _stagedCount;

    // Datagrams waiting for PollTransmit (handshake messages, keepalives, staged packets now sealed).
    // Created at the first datagram (an idle peer sends none) and grows to the largest burst once
    // (no allocation per packet after that); a preallocated MaxStagedPackets-sized queue cost every
    // idle peer a kilobyte.
    private Queue<PacketBuffer>? _transmit;

    // Timer deadlines (null = not armed), as in wireguard-go's timers.go.
    private TimeSpan? _retransmitHandshakeAt;
    private TimeSpan? _sendKeepaliveAt;
    private TimeSpan? _newHandshakeAt;
    private uint _jitterState; // xorshift32 state for Jitter(); 0 until first use
    private TimeSpan? _zeroKeyMaterialAt;
    private TimeSpan? _persistentKeepaliveAt;
    private int _handshakeAttempts;
    private bool _needAnotherKeepalive;
    private bool _sentLastMinuteHandshake;

    private HandshakeReplayState? _replayState;
    private DateTime? _lastHandshakeUtc;
    private long _rxBytes;
    private long _txBytes;
    private bool _disposed;

    public Peer(Device device, PeerConfig config)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(config);
        _device = device;
        _config = config;
        _endpoint = config.Endpoint;
        if (device.PeersWriteAllowedIps)
        {
            device.AllowedIps.ReplaceAll(config.PublicKey, config.AllowedIps);
        }
    }

    public WireGuardKey PublicKey => _config.PublicKey;

    public PeerConfig Config => _config;

    /// <summary>What this peer did and refused; allocated at the first event (or the first read).</summary>
    public PeerCounters Counters => Volatile.Read(ref _counters) ?? CreateCounters();

    // A status reader on another thread may get here at the same time as the owner: one instance wins.
    private PeerCounters CreateCounters()
    {
        Interlocked.CompareExchange(ref _counters, new PeerCounters(), null);
        return _counters!;
    }

    private CookieGenerator Cookies => _cookieGenerator ??= CreateCookieGenerator();

    private CookieGenerator CreateCookieGenerator()
    {
        Span<byte> remoteStatic = stackalloc byte[WireGuardKey.Size];
        PublicKey.CopyTo(remoteStatic);
        return new CookieGenerator(remoteStatic);
    }

    /// <summary>
    /// Section 5.4.2: DH(Spriv_i, Spub_r) never changes, so it is computed once, at the first
    /// handshake. A zero result (a low-order public key) stays zero and every handshake with this peer fails.
    /// </summary>
    private ReadOnlySpan<byte> PrecomputedStaticStatic
    {
        get
        {
            if (_precomputedStaticStatic is null)
            {
                Span<byte> remoteStatic = stackalloc byte[WireGuardKey.Size];
                PublicKey.CopyTo(remoteStatic);
                var shared = new byte[32];
                _device.StaticKey.TrySharedSecret(remoteStatic, shared);
                _precomputedStaticStatic = shared;
            }
            return _precomputedStaticStatic;
        }
    }

    /// <summary>The configured preshared key into <paramref name="destination"/>; zeros for none (section 5.2).</summary>
    private void CopyPresharedKey(Span<byte> destination)
    {
        if (_config.PresharedKey is { } psk)
        {
            psk.CopyTo(destination);
        }
        else
        {
            destination.Clear();
        }
    }

    /// <summary>Current endpoint: configured, then the source of the latest authenticated datagram (roaming, section 6.5).</summary>
    public UdpEndpoint Endpoint => _endpoint;

    /// <summary>
    /// The local address the peer's latest datagram arrived at (its port is not used), stamped on
    /// everything sent to <see cref="Endpoint"/> so replies leave from the address the peer
    /// contacted; none (the kernel chooses) for a configured or named endpoint until a datagram comes,
    /// and again from a handshake retried for want of an answer until the next one comes.
    /// </summary>
    public UdpEndpoint LocalAddress => _localAddress;

    /// <summary>Wall-clock time of the latest completed handshake, or null.</summary>
    public DateTime? LastHandshakeUtc => _lastHandshakeUtc;

    /// <summary>Bytes received and sent in datagrams (what `wg show` calls transfer).</summary>
    public long RxBytes => _rxBytes;

    public long TxBytes => _txBytes;

    /// <summary>True while a keypair usable for sending exists (a confirmed session).</summary>
    public bool HasSession(TimeSpan now) => _current is { } keypair && keypair.CanSend(now);

    /// <summary>Outbound packets held until a handshake completes.</summary>
    public int StagedCount => _stagedCount;

    /// <summary>Whether <paramref name="packet"/> is one of the packets held until a handshake completes (a scan of at most <see cref="ProtocolConstants.MaxStagedPackets"/>).</summary>
    public bool IsStaged(PacketBuffer packet)
    {
        for (int i = 0; i < _stagedCount; i++)
        {
            if (ReferenceEquals(_staged![(_stagedHead + i) % _staged.Length], packet))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// The outbound packets held until a handshake completes, oldest first; the peer still owns them.
    /// Not for the packet path (it allocates an enumerator): the owner reads it once, after <see cref="TakeOver"/>.
    /// </summary>
    public IEnumerable<PacketBuffer> StagedPackets
    {
        get
        {
            for (int i = 0; i < _stagedCount; i++)
            {
                yield return _staged![(_stagedHead + i) % _staged.Length]!;
            }
        }
    }

    /// <summary>
    /// How often handshake retransmission gave up after Rekey-Attempt-Time (section 6.4); read
    /// without making <see cref="Counters"/> (an idle peer has none), so the owner can poll it after every step.
    /// </summary>
    public long HandshakeGiveUps => Volatile.Read(ref _counters)?.HandshakeGiveUps ?? 0;

    /// <summary>For tests: the keypair used for sending (to drive message-count limits without 2^60 packets).</summary>
    internal Keypair? CurrentKeypair => _current;

    /// <summary>
    /// Shares initiation replay protection with earlier and later instances for the same remote key
    /// (see <see cref="HandshakeReplayState"/>): raises this peer's greatest accepted TAI64N timestamp
    /// and last initiation consumption time to what <paramref name="state"/> holds, and records every
    /// initiation accepted from now on into it. Call right after construction.
    /// </summary>
    public void AttachReplayState(HandshakeReplayState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _replayState = state;
        state.RestoreInto(_handshake.LastTimestamp, ref _handshake.LastInitiationConsumption);
    }

    /// <summary>
    /// Applies a configuration change (endpoint, keepalive, preshared key, allowed IPs) without losing
    /// the session. The peer moves to the configured endpoint when it is a new one, or when
    /// <paramref name="endpointNamed"/>: the request named it (UAPI <c>endpoint=</c>), which
    /// wireguard-go follows even when it is the endpoint configured before and the peer has roamed
    /// since; a change that does not name it keeps the endpoint roaming learned.
    /// </summary>
    public void Update(PeerConfig config, TimeSpan now, bool endpointNamed = false)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.PublicKey != _config.PublicKey)
        {
            throw new ArgumentException("a peer's public key cannot change; remove the peer and add a new one", nameof(config));
        }
        if (_disposed)
        {
            return;
        }
        var old = _config;
        _config = config;
        if ((endpointNamed || config.Endpoint != old.Endpoint) && !config.Endpoint.IsNone)
        {
            _endpoint = config.Endpoint;
            _localAddress = default;
        }
        if (_device.PeersWriteAllowedIps)
        {
            _device.AllowedIps.ReplaceAll(PublicKey, config.AllowedIps);
        }
        if (config.PersistentKeepaliveSeconds == 0)
        {
            _persistentKeepaliveAt = null;
        }
        else if (old.PersistentKeepaliveSeconds == 0)
        {
            // As wireguard-go's UAPI does: turning persistent keepalive on sends one right away.
            SendKeepalive(now);
        }
    }

    /// <summary>
    /// Outbound: seals the IP packet in <paramref name="packet"/> in place (header into the headroom,
    /// padding, tag). <see cref="PacketBuffer.Ecn"/> is left as the caller set it (the outer codepoint
    /// from copy-in) and <see cref="PacketBuffer.Endpoint"/> is set to the peer's endpoint. Sealed
    /// and Dropped leave the packet with the caller, Queued gives it to the peer; when it throws, the
    /// caller still owns the packet.
    /// </summary>
    public SealResult HandleTunPacket(PacketBuffer packet, TimeSpan now)
    {
        if (_disposed || packet.Length == 0 || !HasRoomToSeal(packet))
        {
            Counters.OutboundDropped++;
            return SealResult.Dropped;
        }
        if (_stagedCount == 0 && _current is { } keypair && keypair.CanSend(now))
        {
            SealWith(keypair, packet, now);
            return SealResult.Sealed;
        }
        if (!Stage(packet))
        {
            // Not held (the device's budget is spent and this peer holds nothing to make room):
            // dropped, but the handshake starts, so the packets after it find a session.
            SendHandshakeInitiation(now, isRetry: false);
            return SealResult.Dropped;
        }
        try
        {
            SendStagedPackets(now, callers: packet);
        }
        catch
        {
            // The caller keeps a packet this call throws for (a fault in the handshake the packet
            // started, or in sealing an earlier staged one): held here too, it had two owners, since
            // the caller returns it and Dispose returned it again, while the pool may have lent it
            // out meanwhile. The packet is the newest staged one (also when sealing it threw:
            // SendStagedPackets puts a packet it could not seal back), or SendStagedPackets left
            // it out of every queue (sealed, then the timers' step threw).
            Unstage(packet);
            throw;
        }
        return SealResult.Queued;
    }

    /// <summary>Inbound transport data addressed to one of this peer's receiver indices. The caller keeps ownership of the buffer in every case.</summary>
    public OpenResult HandleTransportData(PacketBuffer datagram, TimeSpan now)
    {
        if (_disposed)
        {
            Counters.NoKeypairRejections++;
            return OpenResult.NoKeypair;
        }
        Span<byte> data = datagram.Data;
        if (MessageHeader.Classify(data, out uint receiver) != MessageType.TransportData)
        {
            Counters.MalformedRejections++;
            return OpenResult.Malformed;
        }
        var keypair = FindKeypair(receiver);
        if (keypair is null || !keypair.CanReceive(now))
        {
            Counters.NoKeypairRejections++;
            return OpenResult.NoKeypair;
        }
        ulong counter = BinaryPrimitives.ReadUInt64LittleEndian(data[MessageLayout.TransportCounter..]);
        if (!keypair.Replay.WouldAccept(counter, ProtocolConstants.RejectAfterMessages))
        {
            Counters.ReplayRejections++;
            return OpenResult.Replayed;
        }
        if (!keypair.TryOpen(data[MessageLayout.TransportContent..], counter))
        {
            Counters.AuthenticationFailures++;
            return OpenResult.AuthenticationFailed;
        }
        if (!keypair.Replay.TryAccept(counter, ProtocolConstants.RejectAfterMessages))
        {
            Counters.ReplayRejections++;
            return OpenResult.Replayed;
        }

        // Authenticated from here on.
        int datagramLength = data.Length;
        if (ReferenceEquals(keypair, _next))
        {
            // The initiator confirmed the keypair we derived as responder (section 6.1).
            DeleteKeypair(_previous);
            _previous = _current;
            _current = _next;
            _next = null;
            SetEndpoint(datagram);
            TimersHandshakeComplete(now);
            Counters.HandshakesCompleted++;
            SendStagedPackets(now);
        }
        SetEndpoint(datagram);
        _rxBytes += datagramLength;
        KeepKeyFreshReceiving(now);
        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketReceived();

        int plainLength = datagramLength - MessageHeader.TransportMinSize;
        if (plainLength == 0)
        {
            Counters.KeepalivesReceived++;
            return OpenResult.Keepalive;
        }
        TimersDataReceived(now);

        int innerOffset = datagram.Offset + MessageHeader.TransportHeaderSize;
        Span<byte> inner = datagram.Memory.Slice(innerOffset, plainLength);
        if (IpPacket.Validate(inner, out int totalLength) != IpParseStatus.Ok)
        {
            Counters.MalformedRejections++;
            return OpenResult.Malformed;
        }
        datagram.SetData(innerOffset, totalLength);
        ReadOnlySpan<byte> source = inner[0] >> 4 == 4 ? inner.Slice(12, 4) : inner.Slice(8, 16);
        if (!_device.AllowedIps.TryLookup(source, out var owner) || owner != PublicKey)
        {
            Counters.SourceNotAllowedRejections++;
            return OpenResult.SourceNotAllowed;
        }
        return OpenResult.Packet;
    }

    /// <summary>An initiation (already admitted by <see cref="Device.AdmitHandshake"/>), response or cookie reply for this peer. The caller keeps ownership of the buffer.</summary>
    public HandshakeResult HandleHandshakeMessage(PacketBuffer datagram, TimeSpan now)
    {
        if (_disposed)
        {
            return HandshakeResult.Rejected;
        }
        switch (MessageHeader.Classify(datagram.Data, out uint receiver))
        {
            case MessageType.Initiation:
                return ConsumeInitiation(datagram, now);
            case MessageType.Response:
                return ConsumeResponse(datagram, receiver, now);
            case MessageType.CookieReply:
                return ConsumeCookieReply(datagram, receiver, now);
            default:
                Counters.MalformedRejections++;
                return HandshakeResult.Rejected;
        }
    }

    /// <summary>
    /// Call once after construction, when the peer goes live: with persistent keepalive on it sends
    /// a keepalive at once (starting a handshake), as wireguard-go does when a peer is configured
    /// with persistent-keepalive on an interface that is up. Otherwise nothing happens until there
    /// is traffic (or <see cref="Connect"/>).
    /// </summary>
    public void Start(TimeSpan now)
    {
        if (!_disposed && _config.PersistentKeepaliveSeconds > 0)
        {
            SendKeepalive(now);
        }
    }

    /// <summary>
    /// Before <see cref="Start"/>: where an earlier instance of this peer last sent (roaming moves it
    /// from the configured endpoint, section 6.5, and a Gateway's Clients have none configured at all)
    /// and from which local address, so a peer rebuilt after a fault reaches the other side where it
    /// is now, from the address it contacted (a Client behind a stateful firewall drops anything
    /// else). None changes nothing.
    /// </summary>
    public void RestoreEndpoint(UdpEndpoint endpoint, UdpEndpoint localAddress)
    {
        if (!endpoint.IsNone)
        {
            _endpoint = endpoint;
            _localAddress = localAddress;
        }
    }

    /// <summary>Starts a handshake now unless one is in flight (used at start-up and when a user forces one).</summary>
    public void Connect(TimeSpan now)
    {
        if (_disposed || (_handshake.State == HandshakeState.InitiationCreated && _retransmitHandshakeAt is not null))
        {
            return;
        }
        SendHandshakeInitiation(now, isRetry: false);
    }

    /// <summary>
    /// Sends a keepalive on the current session, if there is one that may still send, and does
    /// nothing otherwise (no handshake is started). After the device's listen port changed this
    /// tells the peer the new endpoint at once (an authenticated packet moves the peer's endpoint,
    /// whitepaper section 2.1), as wireguard-go's SendKeepalivesToPeersWithCurrentKeypair does after
    /// a rebind. True when one was queued.
    /// </summary>
    public bool SendKeepaliveOnSession(TimeSpan now)
    {
        if (_disposed || !HasSession(now) || _endpoint.IsNone)
        {
            return false;
        }
        SendKeepalive(now);
        return true;
    }

    /// <summary>Runs every timer due at <paramref name="now"/> (whitepaper section 6).</summary>
    public void HandleTimeout(TimeSpan now)
    {
        if (_disposed)
        {
            return;
        }
        if (IsDue(ref _retransmitHandshakeAt, now))
        {
            ExpiredRetransmitHandshake(now);
        }
        if (IsDue(ref _sendKeepaliveAt, now))
        {
            ExpiredSendKeepalive(now);
        }
        if (IsDue(ref _newHandshakeAt, now))
        {
            // Section 6.2: data sent, nothing heard back for Keepalive-Timeout + Rekey-Timeout.
            ClearLocalAddress();
            SendHandshakeInitiation(now, isRetry: false);
        }
        if (IsDue(ref _zeroKeyMaterialAt, now))
        {
            ZeroAndFlushAll();
        }
        if (IsDue(ref _persistentKeepaliveAt, now) && _config.PersistentKeepaliveSeconds > 0)
        {
            SendKeepalive(now);
        }
    }

    /// <summary>The next time <see cref="HandleTimeout"/> must be called, or null when no timer is armed.</summary>
    public TimeSpan? PollTimeout()
    {
        TimeSpan? earliest = null;
        Earliest(ref earliest, _retransmitHandshakeAt);
        Earliest(ref earliest, _sendKeepaliveAt);
        Earliest(ref earliest, _newHandshakeAt);
        Earliest(ref earliest, _zeroKeyMaterialAt);
        Earliest(ref earliest, _persistentKeepaliveAt);
        return earliest;
    }

    /// <summary>
    /// Next datagram to send (handshake message, keepalive, or a queued packet now sealed), with
    /// <see cref="PacketBuffer.Endpoint"/> and <see cref="PacketBuffer.Ecn"/> set; ownership moves to the caller.
    /// </summary>
    public bool PollTransmit(out PacketBuffer datagram)
    {
        if (_transmit is { } transmit)
        {
            return transmit.TryDequeue(out datagram!);
        }
        datagram = null!;
        return false;
    }

    /// <summary>Frees this peer's receiver indices, returns queued buffers and zeroes key material.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        ZeroAndFlushAll();
        while (_transmit is { } transmit && transmit.TryDequeue(out var buffer))
        {
            buffer.Return();
        }
        if (_device.PeersWriteAllowedIps)
        {
            _device.AllowedIps.RemoveAll(PublicKey);
        }
        if (_precomputedStaticStatic is { } precomputed)
        {
            CryptographicOperations.ZeroMemory(precomputed);
        }
        _cookieGenerator?.Clear();
        _retransmitHandshakeAt = _sendKeepaliveAt = _newHandshakeAt = _zeroKeyMaterialAt = _persistentKeepaliveAt = null;
        _disposed = true;
    }
}
