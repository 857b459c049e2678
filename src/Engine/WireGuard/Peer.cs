using System.Buffers.Binary;
using System.Security.Cryptography;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
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
public sealed class Peer : IDisposable
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
        if (_disposed || packet.Length == 0 || !HasRoomToSeal(packet) || _endpoint.IsNone)
        {
            Counters.OutboundDropped++;
            return SealResult.Dropped;
        }
        if (_stagedCount == 0 && _current is { } keypair && keypair.CanSend(now))
        {
            SealWith(keypair, packet, now);
            return SealResult.Sealed;
        }
        Stage(packet);
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

    /// <summary>
    /// Moves this peer's keypairs, handshake in flight, cookie and timers out, for a fresh peer of a
    /// device rebuilt with the same static key to <see cref="TakeOver"/> (see <see cref="PeerHandover"/>).
    /// This peer is left as if its keys had expired, with its held packets; dispose it next. Null when
    /// it is disposed. Only its owner calls it, and nothing may step this peer afterwards but Dispose.
    /// </summary>
    public PeerHandover? HandOver()
    {
        if (_disposed)
        {
            return null;
        }
        var handover = new PeerHandover(_device.PublicKey, PublicKey)
        {
            Current = _current,
            Previous = _previous,
            Next = _next,
            Handshake = _handshake,
            Cookies = _cookieGenerator,
            PrecomputedStaticStatic = _precomputedStaticStatic,
            RetransmitHandshakeAt = _retransmitHandshakeAt,
            SendKeepaliveAt = _sendKeepaliveAt,
            NewHandshakeAt = _newHandshakeAt,
            ZeroKeyMaterialAt = _zeroKeyMaterialAt,
            PersistentKeepaliveAt = _persistentKeepaliveAt,
            HandshakeAttempts = _handshakeAttempts,
            NeedAnotherKeepalive = _needAnotherKeepalive,
            SentLastMinuteHandshake = _sentLastMinuteHandshake,
            LastHandshakeUtc = _lastHandshakeUtc,
        };
        // This device's table lets go of the indices; the taking device claims them.
        foreach (var keypair in (ReadOnlySpan<Keypair?>)[_current, _previous, _next])
        {
            if (keypair is not null)
            {
                _device.Indices.Free(keypair.LocalIndex, PublicKey);
            }
        }
        if (_handshake.HasLocalIndex)
        {
            _device.Indices.Free(_handshake.LocalIndex, PublicKey);
        }
        while (_stagedCount > 0)
        {
            var staged = _staged!;
            (handover.Staged ??= new List<PacketBuffer>(_stagedCount)).Add(staged[_stagedHead]!);
            staged[_stagedHead] = null;
            _stagedHead = (_stagedHead + 1) % staged.Length;
            _stagedCount--;
        }
        _stagedHead = 0;
        _current = _previous = _next = null;
        _handshake = new Handshake();
        _cookieGenerator = null;
        _precomputedStaticStatic = null;
        _retransmitHandshakeAt = _sendKeepaliveAt = _newHandshakeAt = _zeroKeyMaterialAt = _persistentKeepaliveAt = null;
        _handshakeAttempts = 0;
        _needAnotherKeepalive = _sentLastMinuteHandshake = false;
        return handover;
    }

    /// <summary>
    /// Takes over what <see cref="HandOver"/> moved out of this peer's predecessor in a device with the
    /// same static key (an MTU rebuild), before <see cref="Start"/> and before any traffic: the
    /// sessions, the handshake in flight and the timers carry on, and the handover is emptied. Each
    /// receiver index is claimed in this device's table; one another peer took meanwhile drops what
    /// used it. False, and the handover disposed, when it is not this peer's (another remote key, or
    /// another static key: a new identity voids the sessions, section 5.4) or this peer has already
    /// handshaken.
    /// </summary>
    public bool TakeOver(PeerHandover handover, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(handover);
        if (_disposed || handover.PublicKey != PublicKey || handover.LocalStatic != _device.PublicKey
            || _current is not null || _next is not null || _previous is not null || _handshake.State != HandshakeState.Zeroed || _handshake.HasLocalIndex)
        {
            handover.Dispose();
            return false;
        }
        _current = Claimed(ref handover.Current);
        _previous = Claimed(ref handover.Previous);
        _next = Claimed(ref handover.Next);
        if (handover.Handshake is { } handshake)
        {
            if (handshake.HasLocalIndex && !_device.Indices.TryClaim(handshake.LocalIndex, PublicKey))
            {
                handshake.HasLocalIndex = false;
                handshake.Clear();
            }
            // The replay memory (section 5.1) is the greater of the two: this peer's came from the slot it was attached to.
            _replayState?.Record(handshake.LastTimestamp, handshake.LastInitiationConsumption);
            _replayState?.RestoreInto(handshake.LastTimestamp, ref handshake.LastInitiationConsumption);
            if (!Tai64N.IsAfter(handshake.LastTimestamp, _handshake.LastTimestamp))
            {
                _handshake.LastTimestamp.CopyTo(handshake.LastTimestamp);
            }
            handshake.LastSentHandshake ??= _handshake.LastSentHandshake;
            _handshake = handshake;
        }
        _cookieGenerator = handover.Cookies ?? _cookieGenerator;
        _precomputedStaticStatic = handover.PrecomputedStaticStatic ?? _precomputedStaticStatic;
        _retransmitHandshakeAt = handover.RetransmitHandshakeAt;
        _sendKeepaliveAt = handover.SendKeepaliveAt;
        _newHandshakeAt = handover.NewHandshakeAt;
        _zeroKeyMaterialAt = handover.ZeroKeyMaterialAt;
        _persistentKeepaliveAt = _config.PersistentKeepaliveSeconds > 0 ? handover.PersistentKeepaliveAt : null;
        _handshakeAttempts = handover.HandshakeAttempts;
        _needAnotherKeepalive = handover.NeedAnotherKeepalive;
        _sentLastMinuteHandshake = handover.SentLastMinuteHandshake;
        _lastHandshakeUtc = handover.LastHandshakeUtc;
        if (handover.Staged is { } carried)
        {
            // Copied into this device's buffers: the old device's pool is dropped with it.
            foreach (var packet in carried)
            {
                if (packet.Length <= _device.Pool.BufferSize - PacketBuffer.Headroom - PacketBuffer.Tailroom && _device.Pool.TryRent(out var copy))
                {
                    copy.SetData(PacketBuffer.Headroom, packet.Length);
                    packet.Data.CopyTo(copy.Data);
                    copy.Ecn = packet.Ecn;
                    Stage(copy);
                }
                else
                {
                    Counters.StagedDropped++;
                }
                packet.Return();
            }
        }
        handover.Forget();
        if (_current is null && _next is null && _handshake.State == HandshakeState.Zeroed)
        {
            // Nothing usable came (every index was taken): the timers of a session that is gone would only misfire.
            _sendKeepaliveAt = _newHandshakeAt = null;
        }
        return true;
    }

    /// <summary>Claims <paramref name="keypair"/>'s receiver index here and takes it; disposes it when the index is taken.</summary>
    private Keypair? Claimed(ref Keypair? keypair)
    {
        var taken = keypair;
        keypair = null;
        if (taken is null || _device.Indices.TryClaim(taken.LocalIndex, PublicKey))
        {
            return taken;
        }
        taken.Dispose();
        return null;
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

    // ---- handshake -------------------------------------------------------------------------

    private void SendHandshakeInitiation(TimeSpan now, bool isRetry)
    {
        if (!isRetry)
        {
            _handshakeAttempts = 0;
        }
        // Section 6.4: at most one initiation per Rekey-Timeout.
        if (_handshake.LastSentHandshake is { } last && now - last < ProtocolConstants.RekeyTimeout)
        {
            return;
        }
        if (_endpoint.IsNone)
        {
            return;
        }
        if (!_device.Pool.TryRent(out var buffer))
        {
            // Nothing was sent, so the Rekey-Timeout rate limit (keyed on LastSentHandshake) must not
            // start: a later packet or Connect may try again at once. Arm the retransmit timer anyway,
            // so the attempt is retried (and counted toward giving up, section 6.4) even if no further
            // trigger comes.
            Counters.PoolExhausted++;
            TimersHandshakeInitiated(now);
            return;
        }
        _handshake.LastSentHandshake = now;
        FreeHandshakeIndex();
        uint senderIndex = _device.Indices.Allocate(PublicKey, _device.Random);
        _handshake.LocalIndex = senderIndex;
        _handshake.HasLocalIndex = true;

        buffer.SetData(PacketBuffer.Headroom, MessageHeader.InitiationSize);
        Span<byte> timestamp = stackalloc byte[Tai64N.Size];
        Tai64N.Write(_device.WallClock(now), timestamp);
        Span<byte> remoteStatic = stackalloc byte[WireGuardKey.Size];
        PublicKey.CopyTo(remoteStatic);
        bool created;
        try
        {
            created = Noise.CreateInitiation(_handshake, _device.StaticPublic, remoteStatic, PrecomputedStaticStatic, timestamp, senderIndex, _device.Random, _device.X25519, buffer.Data);
        }
        catch
        {
            buffer.Return(); // not lost to the pool when the X25519 underneath throws
            throw;
        }
        if (!created)
        {
            buffer.Return();
            FreeHandshakeIndex();
            _handshake.Clear();
            Counters.HandshakeRejections++;
            return;
        }
        Cookies.AddMacs(buffer.Data, now);
        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketSent();
        Transmit(buffer);
        Counters.HandshakeInitiationsSent++;
        TimersHandshakeInitiated(now);
    }

    private HandshakeResult ConsumeInitiation(PacketBuffer datagram, TimeSpan now)
    {
        ReadOnlySpan<byte> message = datagram.Data;
        Span<byte> chainKey = stackalloc byte[32];
        Span<byte> hash = stackalloc byte[32];
        Span<byte> remoteStatic = stackalloc byte[32];
        Span<byte> configuredStatic = stackalloc byte[WireGuardKey.Size];
        PublicKey.CopyTo(configuredStatic);
        Span<byte> timestamp = stackalloc byte[Tai64N.Size];
        try
        {
            // The device usually decrypted msg.static already, to find this peer (InitiationStash).
            if (!(InitiationStash.TryTake(datagram, _device, chainKey, hash, remoteStatic)
                    || Noise.TryConsumeInitiationStatic(message, _device.StaticKey, _device.StaticPublic, chainKey, hash, remoteStatic))
                || !CryptographicOperations.FixedTimeEquals(remoteStatic, configuredStatic)
                || !Noise.TryConsumeInitiationTimestamp(message, PrecomputedStaticStatic, chainKey, hash, timestamp))
            {
                Counters.HandshakeRejections++;
                return HandshakeResult.Rejected;
            }
            if (!Tai64N.IsAfter(timestamp, _handshake.LastTimestamp))
            {
                Counters.ReplayedTimestamps++;
                return HandshakeResult.ReplayedTimestamp;
            }
            if (_handshake.LastInitiationConsumption is { } previous && now - previous <= ProtocolConstants.HandshakeInitiationRate)
            {
                Counters.HandshakeFloods++;
                return HandshakeResult.Rejected;
            }

            chainKey.CopyTo(_handshake.ChainKey);
            hash.CopyTo(_handshake.Hash);
            message.Slice(MessageLayout.InitiationEphemeral, 32).CopyTo(_handshake.RemoteEphemeral);
            _handshake.RemoteIndex = BinaryPrimitives.ReadUInt32LittleEndian(message[MessageLayout.InitiationSender..]);
            timestamp.CopyTo(_handshake.LastTimestamp);
            _handshake.LastInitiationConsumption = now;
            _replayState?.Record(timestamp, now);
            _handshake.State = HandshakeState.InitiationConsumed;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(chainKey);
            CryptographicOperations.ZeroMemory(hash);
        }

        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketReceived();
        SetEndpoint(datagram);
        _rxBytes += message.Length;
        SendHandshakeResponse(now);
        return HandshakeResult.Accepted;
    }

    private void SendHandshakeResponse(TimeSpan now)
    {
        _handshake.LastSentHandshake = now;
        if (!_device.Pool.TryRent(out var buffer))
        {
            Counters.PoolExhausted++;
            _handshake.Clear();
            return;
        }
        FreeHandshakeIndex();
        uint senderIndex = _device.Indices.Allocate(PublicKey, _device.Random);
        _handshake.LocalIndex = senderIndex;
        _handshake.HasLocalIndex = true;
        buffer.SetData(PacketBuffer.Headroom, MessageHeader.ResponseSize);
        Span<byte> remoteStatic = stackalloc byte[WireGuardKey.Size];
        PublicKey.CopyTo(remoteStatic);
        Span<byte> presharedKey = stackalloc byte[WireGuardKey.Size];
        CopyPresharedKey(presharedKey);
        bool created = Noise.CreateResponse(_handshake, remoteStatic, presharedKey, senderIndex, _device.Random, _device.X25519, buffer.Data);
        CryptographicOperations.ZeroMemory(presharedKey);
        if (!created)
        {
            buffer.Return();
            FreeHandshakeIndex();
            _handshake.Clear();
            Counters.HandshakeRejections++;
            return;
        }
        Cookies.AddMacs(buffer.Data, now);
        BeginSymmetricSession(now);
        TimersSessionDerived(now);
        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketSent();
        Transmit(buffer);
        Counters.HandshakeResponsesSent++;
    }

    private HandshakeResult ConsumeResponse(PacketBuffer datagram, uint receiver, TimeSpan now)
    {
        if (_handshake.State != HandshakeState.InitiationCreated || !_handshake.HasLocalIndex || _handshake.LocalIndex != receiver)
        {
            Counters.UnexpectedMessages++;
            return HandshakeResult.Unexpected;
        }
        Span<byte> presharedKey = stackalloc byte[WireGuardKey.Size];
        CopyPresharedKey(presharedKey);
        bool consumed = Noise.TryConsumeResponse(_handshake, datagram.Data, _device.StaticKey, _device.X25519, presharedKey);
        CryptographicOperations.ZeroMemory(presharedKey);
        if (!consumed)
        {
            Counters.HandshakeRejections++;
            return HandshakeResult.Rejected;
        }
        SetEndpoint(datagram);
        _rxBytes += datagram.Length;
        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketReceived();
        BeginSymmetricSession(now);
        TimersSessionDerived(now);
        TimersHandshakeComplete(now);
        Counters.HandshakesCompleted++;
        // Section 6.5: confirm the session at once (with staged data, or an empty keepalive).
        SendKeepalive(now);
        return HandshakeResult.Accepted;
    }

    private HandshakeResult ConsumeCookieReply(PacketBuffer datagram, uint receiver, TimeSpan now)
    {
        bool known = (_handshake.HasLocalIndex && _handshake.LocalIndex == receiver) || FindKeypair(receiver) is not null;
        if (!known)
        {
            Counters.UnexpectedMessages++;
            return HandshakeResult.Unexpected;
        }
        if (!Cookies.TryConsumeReply(datagram.Data, now))
        {
            Counters.HandshakeRejections++;
            return HandshakeResult.Rejected;
        }
        Counters.CookiesReceived++;
        return HandshakeResult.Accepted;
    }

    /// <summary>Derives the transport keypair from the finished handshake and rotates keypairs (wireguard-go's BeginSymmetricSession).</summary>
    private void BeginSymmetricSession(TimeSpan now)
    {
        bool isInitiator;
        if (_handshake.State == HandshakeState.ResponseConsumed)
        {
            isInitiator = true;
        }
        else if (_handshake.State == HandshakeState.ResponseCreated)
        {
            isInitiator = false;
        }
        else
        {
            return;
        }
        Span<byte> sendKey = stackalloc byte[32];
        Span<byte> receiveKey = stackalloc byte[32];
        Keypair keypair;
        try
        {
            Noise.DeriveTransportKeys(_handshake.ChainKey, isInitiator, sendKey, receiveKey);
            keypair = new Keypair(_device.TransportAead, sendKey, receiveKey, isInitiator, _handshake.LocalIndex, _handshake.RemoteIndex, now);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(sendKey);
            CryptographicOperations.ZeroMemory(receiveKey);
        }
        // The handshake's index now belongs to the keypair (same owner in the device's table).
        _handshake.HasLocalIndex = false;
        _handshake.Clear();

        if (isInitiator)
        {
            var oldPrevious = _previous;
            if (_next is not null)
            {
                _previous = _next;
                _next = null;
                DeleteKeypair(_current);
            }
            else
            {
                _previous = _current;
            }
            DeleteKeypair(oldPrevious);
            _current = keypair;
        }
        else
        {
            DeleteKeypair(_next);
            _next = keypair;
            DeleteKeypair(_previous);
            _previous = null;
        }
    }

    // ---- transport -------------------------------------------------------------------------

    private bool HasRoomToSeal(PacketBuffer packet) =>
        packet.Offset >= MessageHeader.TransportHeaderSize
        && packet.Offset + PaddedLength(packet.Length) + MessageHeader.AeadTagSize <= packet.Capacity;

    /// <summary>
    /// Section 5.4.6: pad to a multiple of 16, but (as the kernel and wireguard-go do) never beyond
    /// the interface MTU when it is known.
    /// </summary>
    private int PaddedLength(int length)
    {
        int mtu = _device.Mtu;
        const int mask = ProtocolConstants.PaddingMultiple - 1;
        if (mtu <= 0)
        {
            return (length + mask) & ~mask;
        }
        int lastUnit = length > mtu ? length % mtu : length;
        int paddedUnit = Math.Min((lastUnit + mask) & ~mask, mtu);
        return length + Math.Max(0, paddedUnit - lastUnit);
    }

    private void SealWith(Keypair keypair, PacketBuffer packet, TimeSpan now)
    {
        int length = packet.Length;
        SealPayload(keypair, packet);
        AfterSealed(packet, length, now);
    }

    /// <summary>Section 5.4.6: header, padding and AEAD in place; the packet's data is then the transport message.</summary>
    private void SealPayload(Keypair keypair, PacketBuffer packet)
    {
        ulong counter = keypair.SendCounter++;
        int length = packet.Length;
        int padded = PaddedLength(length);
        keypair.Seal(packet.Memory, packet.Offset, length, padded, counter);
        packet.SetData(packet.Offset - MessageHeader.TransportHeaderSize, MessageHeader.TransportHeaderSize + padded + MessageHeader.AeadTagSize);
    }

    /// <summary>A packet of <paramref name="length"/> inner bytes was sealed: its destination, the transfer and the timers (section 6), a rekey if due.</summary>
    private void AfterSealed(PacketBuffer packet, int length, TimeSpan now)
    {
        packet.Endpoint = _endpoint;
        packet.LocalAddress = _localAddress;
        _txBytes += packet.Length;
        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketSent();
        if (length > 0)
        {
            TimersDataSent(now);
        }
        else
        {
            Counters.KeepalivesSent++;
        }
        KeepKeyFreshSending(now);
    }

    private void Stage(PacketBuffer packet)
    {
        var staged = _staged ??= new PacketBuffer?[ProtocolConstants.MaxStagedPackets];
        if (_stagedCount == staged.Length)
        {
            var oldest = staged[_stagedHead]!;
            staged[_stagedHead] = null;
            _stagedHead = (_stagedHead + 1) % staged.Length;
            _stagedCount--;
            oldest.Return();
            Counters.StagedDropped++;
        }
        staged[(_stagedHead + _stagedCount) % staged.Length] = packet;
        _stagedCount++;
    }

    /// <summary>Takes <paramref name="packet"/> back out of the staged queue if it is its newest entry.</summary>
    private void Unstage(PacketBuffer packet)
    {
        if (_stagedCount == 0)
        {
            return;
        }
        var staged = _staged!;
        int newest = (_stagedHead + _stagedCount - 1) % staged.Length;
        if (ReferenceEquals(staged[newest], packet))
        {
            staged[newest] = null;
            _stagedCount--;
        }
    }

    /// <summary>
    /// Seals every staged packet with the current keypair, or starts a handshake when there is none
    /// (wireguard-go's SendStagedPackets). <paramref name="callers"/>: the packet of the
    /// HandleTunPacket call this runs in, which stays its caller's if this throws.
    /// </summary>
    private void SendStagedPackets(TimeSpan now, PacketBuffer? callers = null)
    {
        while (_stagedCount > 0)
        {
            var keypair = _current;
            if (keypair is null || !keypair.CanSend(now))
            {
                SendHandshakeInitiation(now, isRetry: false);
                return;
            }
            var staged = _staged!; // non-null while _stagedCount > 0
            var packet = staged[_stagedHead]!;
            staged[_stagedHead] = null;
            _stagedHead = (_stagedHead + 1) % staged.Length;
            _stagedCount--;
            int length = packet.Length;
            try
            {
                SealPayload(keypair, packet);
            }
            catch
            {
                // A fault of the AEAD (OpenSSL's can fail): the packet goes back to the head of the
                // queue, unsealed, so it still has one owner, this peer (Dispose returns it), and not none.
                _stagedHead = (_stagedHead + staged.Length - 1) % staged.Length;
                staged[_stagedHead] = packet;
                _stagedCount++;
                throw;
            }
            try
            {
                AfterSealed(packet, length, now);
            }
            catch when (!ReferenceEquals(packet, callers))
            {
                // Sealed, then the timers' step threw (a rekey's initiation): the packet is ready
                // to go and stays the peer's, queued as usual. The caller's own packet stays the caller's.
                (_transmit ??= new()).Enqueue(packet);
                throw;
            }
            (_transmit ??= new()).Enqueue(packet);
        }
    }

    private void FlushStagedPackets()
    {
        while (_stagedCount > 0)
        {
            var staged = _staged!; // non-null while _stagedCount > 0
            var packet = staged[_stagedHead]!;
            staged[_stagedHead] = null;
            _stagedHead = (_stagedHead + 1) % staged.Length;
            _stagedCount--;
            packet.Return();
            Counters.StagedDropped++;
        }
        _stagedHead = 0;
    }

    /// <summary>Queues an empty transport message unless data is already staged (which serves the same purpose), then flushes.</summary>
    private void SendKeepalive(TimeSpan now)
    {
        if (_stagedCount == 0 && !_endpoint.IsNone)
        {
            if (!_device.Pool.TryRent(out var keepalive))
            {
                Counters.PoolExhausted++;
                return;
            }
            Stage(keepalive); // Length 0 at the headroom; Ecn Not-ECT.
        }
        SendStagedPackets(now);
    }

    private void Transmit(PacketBuffer buffer)
    {
        buffer.Endpoint = _endpoint;
        buffer.LocalAddress = _localAddress;
        buffer.Ecn = Ecn.NotEct;
        _txBytes += buffer.Length;
        (_transmit ??= new()).Enqueue(buffer);
    }

    private Keypair? FindKeypair(uint localIndex)
    {
        if (_current is { } current && current.LocalIndex == localIndex)
        {
            return current;
        }
        if (_next is { } next && next.LocalIndex == localIndex)
        {
            return next;
        }
        if (_previous is { } previous && previous.LocalIndex == localIndex)
        {
            return previous;
        }
        return null;
    }

    private void SetEndpoint(PacketBuffer datagram)
    {
        if (!datagram.Endpoint.IsNone)
        {
            _endpoint = datagram.Endpoint;
            _localAddress = datagram.LocalAddress;
        }
    }

    /// <summary>
    /// Before a handshake retried for want of an answer: send from the kernel's choice, in case the
    /// local address is the cause of trouble (still on the host, but no longer routed to the peer),
    /// as wireguard-go's markEndpointSrcForClearing and the kernel's timers.c do. The peer's next
    /// datagram sets it again.
    /// </summary>
    private void ClearLocalAddress() => _localAddress = default;

    private void DeleteKeypair(Keypair? keypair)
    {
        if (keypair is null)
        {
            return;
        }
        _device.Indices.Free(keypair.LocalIndex, PublicKey);
        keypair.Dispose();
    }

    private void FreeHandshakeIndex()
    {
        if (_handshake.HasLocalIndex)
        {
            _device.Indices.Free(_handshake.LocalIndex, PublicKey);
            _handshake.HasLocalIndex = false;
        }
    }

    /// <summary>Section 6.3 (and wireguard-go's ZeroAndFlushAll): forget every key and staged packet.</summary>
    private void ZeroAndFlushAll()
    {
        DeleteKeypair(_previous);
        DeleteKeypair(_current);
        DeleteKeypair(_next);
        _previous = _current = _next = null;
        FreeHandshakeIndex();
        _handshake.Clear();
        FlushStagedPackets();
    }

    private void KeepKeyFreshSending(TimeSpan now)
    {
        var keypair = _current;
        if (keypair is not null
            && (keypair.SendCounter > ProtocolConstants.RekeyAfterMessages
                || (keypair.IsInitiator && now - keypair.Created > ProtocolConstants.RekeyAfterTime)))
        {
            SendHandshakeInitiation(now, isRetry: false);
        }
    }

    /// <summary>Section 6.2: an initiator whose session nears Reject-After-Time rekeys on receive, once.</summary>
    private void KeepKeyFreshReceiving(TimeSpan now)
    {
        if (_sentLastMinuteHandshake)
        {
            return;
        }
        var keypair = _current;
        if (keypair is not null && keypair.IsInitiator
            && now - keypair.Created > ProtocolConstants.RejectAfterTime - ProtocolConstants.KeepaliveTimeout - ProtocolConstants.RekeyTimeout)
        {
            _sentLastMinuteHandshake = true;
            SendHandshakeInitiation(now, isRetry: false);
        }
    }

    // ---- timers (wireguard-go timers.go) -----------------------------------------------------

    private void ExpiredRetransmitHandshake(TimeSpan now)
    {
        if (_handshakeAttempts > ProtocolConstants.MaxTimerHandshakes)
        {
            // Section 6.4: give up after Rekey-Attempt-Time; drop what waited for the session.
            Counters.HandshakeGiveUps++;
            _sendKeepaliveAt = null;
            FlushStagedPackets();
            _zeroKeyMaterialAt ??= now + 3 * ProtocolConstants.RejectAfterTime;
        }
        else
        {
            _handshakeAttempts++;
            ClearLocalAddress();
            SendHandshakeInitiation(now, isRetry: true);
        }
    }

    private void ExpiredSendKeepalive(TimeSpan now)
    {
        SendKeepalive(now);
        if (_needAnotherKeepalive)
        {
            _needAnotherKeepalive = false;
            _sendKeepaliveAt = now + ProtocolConstants.KeepaliveTimeout;
        }
    }

    /// <summary>
    /// Up to RekeyTimeoutJitterMaxMilliseconds of timer jitter (whitepaper section 6.1). It only
    /// spreads handshakes out and needs no secrecy, so it comes from a xorshift32 sequence seeded
    /// once from the device's random source (wireguard-go also uses a fast non-cryptographic
    /// generator here): the CSPRNG cost a call into OpenSSL and a getpid system call on the first
    /// packet sent after every reply.
    /// </summary>
    private TimeSpan Jitter()
    {
        uint x = _jitterState;
        Span<byte> bytes = stackalloc byte[4];
        while (x == 0)
        {
            _device.Random.Fill(bytes);
            x = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        }
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        _jitterState = x;
        return TimeSpan.FromMilliseconds(x % ProtocolConstants.RekeyTimeoutJitterMaxMilliseconds);
    }

    private void TimersDataSent(TimeSpan now) =>
        _newHandshakeAt ??= now + ProtocolConstants.KeepaliveTimeout + ProtocolConstants.RekeyTimeout + Jitter();

    private void TimersDataReceived(TimeSpan now)
    {
        if (_sendKeepaliveAt is null)
        {
            _sendKeepaliveAt = now + ProtocolConstants.KeepaliveTimeout;
        }
        else
        {
            _needAnotherKeepalive = true;
        }
    }

    private void TimersAnyAuthenticatedPacketSent() => _sendKeepaliveAt = null;

    private void TimersAnyAuthenticatedPacketReceived() => _newHandshakeAt = null;

    private void TimersHandshakeInitiated(TimeSpan now) =>
        _retransmitHandshakeAt = now + ProtocolConstants.RekeyTimeout + Jitter();

    private void TimersHandshakeComplete(TimeSpan now)
    {
        _retransmitHandshakeAt = null;
        _handshakeAttempts = 0;
        _sentLastMinuteHandshake = false;
        _lastHandshakeUtc = _device.WallClock(now);
    }

    private void TimersSessionDerived(TimeSpan now) => _zeroKeyMaterialAt = now + 3 * ProtocolConstants.RejectAfterTime;

    private void TimersAnyAuthenticatedPacketTraversal(TimeSpan now)
    {
        ushort interval = _config.PersistentKeepaliveSeconds;
        if (interval > 0)
        {
            _persistentKeepaliveAt = now + TimeSpan.FromSeconds(interval);
        }
    }

    private static bool IsDue(ref TimeSpan? deadline, TimeSpan now)
    {
        if (deadline is { } at && at <= now)
        {
            deadline = null;
            return true;
        }
        return false;
    }

    private static void Earliest(ref TimeSpan? earliest, TimeSpan? candidate)
    {
        if (candidate is { } value && (earliest is not { } current || value < current))
        {
            earliest = value;
        }
    }
}
