using System.Runtime.ExceptionServices;
using Akka.Actor;
using Akka.Event;
using Firezone.Actors.Actors.Batches;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Packets;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Native;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// The packet path of one peer: its engine state machine behind a lock, stepped by whichever thread
/// holds the packets. Outbound: copy-in (RFC 6040 section 4.1: the outer ECN from the inner header,
/// per the peer's <see cref="EcnMode"/>), then seal in place. Inbound: open (the engine checks the
/// inner source against the peer's allowed IPs), then copy-out (RFC 6040 section 4.2, may drop).
/// Results go to a <see cref="PeerOutput"/>.
///
/// Why a lock and not only the actor's mailbox (issue 8): the TUN and socket reader threads step the
/// path themselves and send or write the result directly, so a packet crosses the daemon with one
/// thread wake-up. Handing every batch to the PeerConnection's mailbox and from there to a writer
/// thread took three wake-ups per crossing and made ping through the tunnel 2.6 times slower than
/// wireguard-go. The PeerConnection actor still owns the path: it creates it in PreStart, closes it
/// in PostStop, drives its timers (whitepaper section 6), applies configuration, answers status and
/// steps it for the batches that reach its mailbox: initiations from the supervisor, and batches a
/// reader could not step (the path closed while the actor restarts, its lock held, or a backlog of
/// batches already queued on the actor; see PeerGroups). An engine fault on a reader thread closes
/// the path and is sent to the actor, which rethrows it, so supervision still restarts the peer; a
/// fault of the actor's own step closes the path too, before it propagates.
/// </summary>
public sealed class PeerDataPath
{
    private static readonly TimeSpan UnexpectedEcnLogInterval = TimeSpan.FromSeconds(10);

    /// <summary>At most one rejected-handshake line per peer this often: a flood of bogus handshakes must not flood the log.</summary>
    private static readonly TimeSpan RejectedHandshakeLogInterval = TimeSpan.FromSeconds(10);

    /// <summary>At most one sent-initiation line per peer this often (REKEY_TIMEOUT, whitepaper section 6.4: one per retry).</summary>
    private static readonly TimeSpan InitiationLogInterval = TimeSpan.FromSeconds(5);

    /// <summary>A gap between two initiations of one series longer than any retry's (Rekey-Timeout plus jitter, timers late on a busy machine): a suspend.</summary>
    private static readonly TimeSpan InitiationGapOfASuspend = 2 * ProtocolConstants.RekeyTimeout;
    private static readonly TimeSpan NotSentLogInterval = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a reader waits for a peer the other reader (or the actor) is stepping. The other
    /// step takes microseconds, so waiting beats three wake-ups on the actor path (single-stream TCP
    /// 24% faster than not waiting at all). But the holder may be preempted on two busy cores, and
    /// a reader blocked behind it stalls every peer it serves, so the wait is bounded.
    /// </summary>
    private static readonly TimeSpan ReaderLockWait = TimeSpan.FromMilliseconds(1);

    private readonly Lock _gate = new();
    private readonly IWireGuardDevice _device;
    private readonly IWireGuardPeer _peer;
    private readonly PeerSlot _slot;
    private readonly PeerCounters _counters;
    private readonly IActorRef _connection;
    private readonly ILoggingAdapter _log;
    private readonly PeerHandovers? _handOverTo;
    private PeerConfig _config;
    private TimeSpan? _armed;
    private bool _armRequested;
    private LogRateLimit _unexpectedEcnLog;
    private LogRateLimit _rejectedHandshakeLog;
    private LogRateLimit _initiationLog;
    private CountedLogRateLimit _notSentLog;
    // Initiations sent since the last completed handshake or give-up (the "try N" of wireguard-go's
    // log), when the first of them left (moved on by the gaps a suspend left, see
    // NoteInitiationSent) and when the last one left.
    private int _initiationAttempts;
    private TimeSpan _firstInitiationAt;
    private TimeSpan _lastInitiationAt;
    // The engine's count of handshakes given up (section 6.4) as last seen, and when the last one
    // was, while no handshake has completed since (null otherwise).
    private long _giveUpsSeen;
    private TimeSpan? _gaveUpAt;
    // When the first of the initiations went out that had gone unanswered for Rekey-Attempt-Time
    // while traffic kept the engine from giving up (said once at Information), until a handshake
    // completes (null otherwise).
    private TimeSpan? _stillTryingSince;
    // The engine's last handshake time as last seen: a change is a new session (logged once).
    private DateTime? _lastHandshakeSeen;
    private bool _closed;
    private bool _disposed;

    // Inner length of each packet the engine staged (SealResult.Queued), by buffer: counted as sent
    // when that buffer comes out of PollTransmit sealed, never when the engine drops it. At most the
    // engine's staged queue (MaxStagedPackets) plus stale entries of dropped ones: cleared whenever
    // nothing is staged, and pruned to what the engine still holds past StagedLengthsPruneAt (the
    // engine drops its oldest for each new packet while a peer never answers, and the traffic that
    // keeps coming keeps something staged: it held a length for every buffer ever staged, thousands).
    // Made at the first staged packet: 10,000 idle peers need not hold one each.
    private Dictionary<PacketBuffer, int>? _staged;
    private const int StagedLengthsPruneAt = 2 * ProtocolConstants.MaxStagedPackets;

    /// <summary>Staged packets whose inner length is held for counting (tests).</summary>
    internal int StagedLengthsHeld
    {
        get
        {
            lock (_gate)
            {
                return _staged?.Count ?? 0;
            }
        }
    }

    internal PeerDataPath(IWireGuardDevice device, IWireGuardPeer peer, PeerSlot slot, PeerConfig config, IActorRef connection, ILoggingAdapter log,
        PeerHandovers? handOverTo = null)
    {
        _handOverTo = handOverTo;
        _device = device;
        _peer = peer;
        _slot = slot;
        _counters = slot.Counters;
        _config = config;
        _connection = connection;
        _log = log;
        _lastHandshakeSeen = peer.LastHandshakeUtc;
        _giveUpsSeen = peer.HandshakeGiveUps;
    }

    /// <summary>
    /// Reader threads: steps an <see cref="OutboundPackets"/> or <see cref="InboundDatagrams"/> batch,
    /// unless the path is closed or another thread has held this peer's lock for longer than
    /// <see cref="ReaderLockWait"/>. Then it returns false: the caller still owns the batch and tells
    /// it to the PeerConnection. When true the batch has been recycled.
    /// </summary>
    public bool TryHandle(PacketBatch batch, TimeSpan now, PeerOutput output)
    {
        if (!_gate.TryEnter(ReaderLockWait))
        {
            return false;
        }
        try
        {
            if (_closed)
            {
                return false;
            }
            try
            {
                Step(batch, now, output);
                if (AfterStep(output, now, fromReader: true))
                {
                    // The engine released datagrams of its own (mostly packets staged behind a handshake
                    // that this step completed). They go out before the lock is released: once it is,
                    // the other reader may seal this peer's next packet and send it at once, ahead
                    // of them. Rare (handshakes, keepalives), so the extra early send is cheap. The
                    // flush also sends other peers' results of this read early, in the same order.
                    output.Flush();
                }
            }
            catch (Exception e) when (IsEngineFault(e))
            {
                FaultFromReader(e);
            }
            finally
            {
                batch.Recycle();
            }
            return true;
        }
        finally
        {
            _gate.Exit();
        }
    }

    /// <summary>The actor: steps a batch from its mailbox; a fault propagates (supervision restarts the peer).</summary>
    internal void Handle(PacketBatch batch, TimeSpan now, PeerOutput output)
    {
        lock (_gate)
        {
            try
            {
                if (!_closed)
                {
                    Step(batch, now, output);
                    AfterStep(output, now, fromReader: false);
                }
                else
                {
                    // The actor is about to restart after a fault on a reader thread: these go, counted.
                    _counters.RestartDrops += batch.ReturnAll();
                }
            }
            catch (Exception e) when (IsEngineFault(e))
            {
                CloseAfterActorFault();
                throw;
            }
            finally
            {
                batch.Recycle();
            }
        }
    }

    /// <summary>
    /// The actor, once in PreStart: see <see cref="IWireGuardPeer.Start"/> (a keepalive, and so a
    /// handshake, only with persistent keepalive on). A newly configured peer otherwise waits for
    /// traffic, as in wireguard-go: a handshake sent before the other side is configured would hold
    /// the first packet until the 5 s retransmission. <paramref name="handshake"/>: the peer had a
    /// session a moment ago (a restart after a fault, a rebuilt tunnel), so it starts the handshake
    /// at once when its endpoint is known, and the other side, which still sends on the old
    /// session, hears from it without waiting for its own rekey.
    /// </summary>
    internal void Start(TimeSpan now, PeerOutput output, bool handshake)
    {
        lock (_gate)
        {
            try
            {
                _peer.Start(now);
                if (handshake && !_peer.Endpoint.IsNone)
                {
                    _peer.Connect(now);
                }
                AfterStep(output, now, fromReader: false);
            }
            catch (Exception e) when (IsEngineFault(e))
            {
                CloseAfterActorFault();
                throw;
            }
        }
    }

    /// <summary>
    /// The actor, in PreStart before <see cref="Start"/>: the engine peer takes over the sessions its
    /// predecessor in the tunnel this one replaces handed over (<see cref="PeerHandovers"/>); true when it did.
    /// </summary>
    internal bool TakeOver(PeerHandover handover, TimeSpan now)
    {
        lock (_gate)
        {
            bool taken = _peer.TakeOver(handover, now);
            _lastHandshakeSeen = _peer.LastHandshakeUtc; // the handshake it took over is not a new session to log
            if (taken)
            {
                // The packets its predecessor held came over as copies in this tunnel's buffers:
                // counted as sent when they come out sealed, as any staged packet (AfterStep).
                foreach (var packet in _peer.StagedPackets)
                {
                    (_staged ??= new(ReferenceEqualityComparer.Instance))[packet] = packet.Length;
                }
            }
            return taken;
        }
    }

    /// <summary>The actor's timer fired (whitepaper section 6 timers).</summary>
    internal void HandleTimeout(TimeSpan now, PeerOutput output) =>
        ActorStep(now, output, 0, static (path, _, at) =>
        {
            path._armed = null;
            path._peer.HandleTimeout(at);
        });

    /// <summary>The actor: a new configuration; false when the path is closed (a fault: the restart's fresh engine peer takes the configuration instead).</summary>
    internal bool Update(PeerConfig config, bool endpointNamed, TimeSpan now, PeerOutput output) =>
        ActorStep(now, output, (config, endpointNamed), static (path, update, at) =>
        {
            if (update.endpointNamed)
            {
                path._slot.TakeEndpointNamed();
            }
            path._config = update.config;
            path._peer.Update(update.config, at, update.endpointNamed);
        });

    internal void Connect(TimeSpan now, PeerOutput output) =>
        ActorStep(now, output, 0, static (path, _, at) => path._peer.Connect(at));

    /// <summary>The actor, after the device's listen port changed: a keepalive on the current session, if any (see <see cref="IWireGuardPeer.SendKeepaliveOnSession"/>).</summary>
    internal void SendKeepaliveOnSession(TimeSpan now, PeerOutput output) =>
        ActorStep(now, output, 0, static (path, _, at) => path._peer.SendKeepaliveOnSession(at));

    /// <summary>
    /// One engine step on the actor's thread under the peer's lock, then its output handed on:
    /// skipped (false) once the path is closed; an engine fault closes the path and propagates (supervision
    /// restarts the peer). The static step and its argument keep it free of allocations.
    /// </summary>
    private bool ActorStep<TArg>(TimeSpan now, PeerOutput output, TArg arg, Action<PeerDataPath, TArg, TimeSpan> step)
    {
        lock (_gate)
        {
            if (_closed)
            {
                return false;
            }
            try
            {
                step(this, arg, now);
                AfterStep(output, now, fromReader: false);
                return true;
            }
            catch (Exception e) when (IsEngineFault(e))
            {
                CloseAfterActorFault();
                throw;
            }
        }
    }

    /// <summary>The actor: the deadline its single timer must now fire at, once per request (a step moved it earlier).</summary>
    internal bool TakeTimerRequest(out TimeSpan due)
    {
        lock (_gate)
        {
            due = _armed.GetValueOrDefault();
            bool requested = _armRequested && _armed.HasValue && !_closed;
            _armRequested = false;
            return requested;
        }
    }

    /// <summary>Copies the engine's view (endpoint, last handshake, bytes) into the slot's counters for status.</summary>
    internal void PublishEngineView()
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                _counters.Publish(_peer.Endpoint, _peer.LocalAddress, _peer.LastHandshakeUtc, _peer.RxBytes);
            }
        }
    }

    /// <summary>
    /// Drops the lengths of buffers the engine no longer holds (it dropped them for newer packets),
    /// with the transmit queue drained, so every buffer it still has is staged. Runs once per
    /// <see cref="ProtocolConstants.MaxStagedPackets"/> or more packets staged, and only for a peer
    /// with no session; the dictionary keeps a capacity of about <see cref="StagedLengthsPruneAt"/>.
    /// </summary>
    private static void PruneStagedLengths(Dictionary<PacketBuffer, int> held, IWireGuardPeer peer)
    {
        foreach (var buffer in held.Keys)
        {
            if (!peer.IsStaged(buffer))
            {
                held.Remove(buffer); // allowed while enumerating a Dictionary since .NET Core 3.0
            }
        }
    }

    /// <summary>The actor's PostStop: no thread steps the path again; the engine peer is disposed.</summary>
    internal void Close()
    {
        lock (_gate)
        {
            // Sessions go on in a rebuilt tunnel only from a path that closes in order: one a fault
            // closed (already _closed) may hold half-updated state.
            bool handOver = !_closed && !_disposed && _handOverTo is { IsCollecting: true };
            _closed = true;
            _staged?.Clear();
            if (!_disposed)
            {
                _disposed = true;
                if (handOver && _peer.HandOver() is { } handover)
                {
                    _handOverTo!.Put(handover);
                }
                // Its transfer carries on under the restart's fresh engine peer (see PeerCounters).
                _counters.CarryEngineView(_peer.RxBytes);
                _peer.Dispose();
            }
        }
    }

    /// <summary>
    /// A failure of the device or socket while an output batch is flushed mid-step is the tunnel's,
    /// not this peer's: it goes on to the reader thread (and the tunnel stops). Anything else is a
    /// fault of this peer's state machine.
    /// </summary>
    private static bool IsEngineFault(Exception e) => e is not (TunDeviceException or UdpSocketException);

    private void FaultFromReader(Exception e)
    {
        // The engine state may be half-updated: nobody steps it again; the restart disposes it.
        _closed = true;
        _connection.Tell(new PeerPathFaulted(this, ExceptionDispatchInfo.Capture(e)), ActorRefs.NoSender);
    }

    /// <summary>
    /// A step on the actor threw (the exception goes on to supervision). Closed at once, under the
    /// lock, as a reader thread's fault closes it: until the restart's PostStop detaches the path,
    /// a reader would otherwise step the half-updated state, and a second fault there would count
    /// as another failure of the peer.
    /// </summary>
    private void CloseAfterActorFault()
    {
        _closed = true;
        _staged?.Clear();
    }

    private void Step(PacketBatch batch, TimeSpan now, PeerOutput output)
    {
        switch (batch)
        {
            case OutboundPackets outbound:
                StepOutbound(outbound, now, output);
                break;
            case InboundDatagrams inbound:
                StepInbound(inbound, now, output);
                break;
            default:
                throw new ArgumentException($"a peer steps OutboundPackets or InboundDatagrams, not {batch.GetType().Name}", nameof(batch));
        }
    }

    private void StepOutbound(OutboundPackets batch, TimeSpan now, PeerOutput output)
    {
        var peer = _peer;
        var mode = _config.EcnMode;
        for (int i = 0; i < batch.Count; i++)
        {
            var buffer = batch[i];
            if (buffer is null)
            {
                continue;
            }
            if (IpPacket.TryGetEcn(buffer.Data, out var inner) != IpParseStatus.Ok)
            {
                _counters.OutboundInvalid++;
                batch.Take(i)!.Return();
                continue;
            }
            // Copy-in, RFC 6040 section 4.1; only the ECN bits reach the outer header.
            buffer.Ecn = EcnEncapsulation.Outer(inner, mode);
            int length = buffer.Length;
            var result = peer.HandleTunPacket(buffer, now);
            // Taken only after the call: if the engine throws, the batch still owns the buffer.
            batch.Take(i);
            switch (result)
            {
                case SealResult.Sealed:
                    _counters.TxPackets++;
                    _counters.TxPacketBytes += length;
                    AddDatagram(buffer, output);
                    break;
                case SealResult.Queued:
                    // The engine owns it now and sends it sealed via PollTransmit after the handshake,
                    // or drops it (staged queue full, session given up): counted as sent only when it
                    // comes out of PollTransmit (AfterStep), by its inner length noted here.
                    (_staged ??= new(ReferenceEqualityComparer.Instance))[buffer] = length;
                    break;
                default:
                    _counters.OutboundDropped++;
                    buffer.Return();
                    break;
            }
        }
    }

    private void StepInbound(InboundDatagrams batch, TimeSpan now, PeerOutput output)
    {
        var peer = _peer;
        for (int i = 0; i < batch.Count; i++)
        {
            var datagram = batch[i];
            if (datagram is null)
            {
                continue;
            }
            switch (MessageHeader.Classify(datagram.Data, out _))
            {
                case MessageType.TransportData:
                {
                    var result = peer.HandleTransportData(datagram, now);
                    batch.Take(i);
                    HandleOpened(datagram, result, output, now);
                    break;
                }
                case MessageType.Response:
                {
                    // Responses carry mac1 like initiations (whitepaper section 5.3); cookies are
                    // only demanded of initiations, so never "under load" here.
                    var admission = _device.AdmitHandshake(datagram, underLoad: false, now, out var cookieReply);
                    if (cookieReply is not null)
                    {
                        // Not in the engine's tx bytes (wireguard-go does not count cookie replies either).
                        AddDatagram(cookieReply, output, inTransfer: false);
                    }
                    if (admission == HandshakeAdmission.Accept)
                    {
                        CountHandshake(peer.HandleHandshakeMessage(datagram, now), MessageType.Response, datagram.Endpoint, now);
                    }
                    else
                    {
                        _counters.HandshakesRejected++;
                        LogRejectedHandshake(MessageType.Response, datagram.Endpoint, null, now,
                            admission == HandshakeAdmission.Overloaded ? "under load and no packet buffer free for a cookie reply" : null);
                    }
                    batch.Take(i)!.Return();
                    break;
                }
                case MessageType.Initiation:
                    // Initiations arrive here already admitted by the PeerSupervisor.
                    CountHandshake(peer.HandleHandshakeMessage(datagram, now), MessageType.Initiation, datagram.Endpoint, now);
                    batch.Take(i)!.Return();
                    break;
                case MessageType.CookieReply:
                    CountHandshake(peer.HandleHandshakeMessage(datagram, now), MessageType.CookieReply, datagram.Endpoint, now);
                    batch.Take(i)!.Return();
                    break;
                default:
                    _counters.MalformedRejected++;
                    batch.Take(i)!.Return();
                    break;
            }
        }
    }

    private void CountHandshake(HandshakeResult result, MessageType type, UdpEndpoint from, TimeSpan now)
    {
        if (result != HandshakeResult.Accepted)
        {
            _counters.HandshakesRejected++;
            LogRejectedHandshake(type, from, result, now);
        }
    }

    /// <summary>
    /// A handshake message of this peer was rejected: the one clue a user with a wrong key, a
    /// preshared-key mismatch or a wrong endpoint gets (wireguard-go logs "Received invalid
    /// response message from ..." at verbose). <paramref name="result"/> null: the mac1 (or
    /// cookie) check refused it before the engine peer saw it (whitepaper section 5.3), or
    /// <paramref name="refusal"/> says why when it was not a bad mac1 (overload).
    /// Rate-limited per peer, with the running count in the line.
    /// </summary>
    private void LogRejectedHandshake(MessageType type, UdpEndpoint from, HandshakeResult? result, TimeSpan now, string? refusal = null)
    {
        if (!_log.IsDebugEnabled || !_rejectedHandshakeLog.TryTake(now, RejectedHandshakeLogInterval))
        {
            return;
        }
        _log.Debug("peer {PublicKey}: rejected {MessageType} from {Endpoint}: {Reason}{Hint}; {RejectedCount} handshake messages of this peer rejected so far",
            _slot.KeyBase64, HandshakeMessageName(type), from, result?.ToString() ?? refusal ?? "mac1/cookie check failed",
            RejectionHint(type, result), PeerCounters.Read(ref _counters.HandshakesRejected));
    }

    private static string HandshakeMessageName(MessageType type) => type switch
    {
        MessageType.Initiation => "handshake initiation",
        MessageType.Response => "handshake response",
        MessageType.CookieReply => "cookie reply",
        _ => type.ToString(),
    };

    /// <summary>What a rejection means, where that is unambiguous.</summary>
    private static string RejectionHint(MessageType type, HandshakeResult? result) => (type, result) switch
    {
        // The response is the first message that depends on the preshared key and on both
        // sides' static keys matching (whitepaper section 5.4.3): mac1 passed, so it is this peer's.
        (MessageType.Response, HandshakeResult.Rejected) => " (the response does not decrypt: wrong preshared key or keys on one side?)",
        (_, HandshakeResult.Unexpected) => " (no handshake of ours in flight with that index: late or duplicate)",
        (_, HandshakeResult.ReplayedTimestamp) => " (TAI64N timestamp not newer than the last one: a replay, or the peer's clock went back)",
        _ => "",
    };

    /// <summary>A handshake initiation leaves the engine: counted as an attempt, logged at most every <see cref="InitiationLogInterval"/>.</summary>
    private void NoteInitiationSent(UdpEndpoint to, TimeSpan now)
    {
        if (_initiationAttempts++ == 0)
        {
            _firstInitiationAt = now;
        }
        else if (now - _lastInitiationAt is var gap && gap > InitiationGapOfASuspend)
        {
            // Retries leave Rekey-Timeout apart (whitepaper section 6.4), so a longer gap within one
            // series is time the machine slept (or the daemon was stopped): `now` is boot time, which
            // counts a suspend. Left out of the seconds the lines below give, a laptop resumed after
            // an hour said "not completed after 2 attempts in 3600 s" for a handshake of seconds.
            _firstInitiationAt += gap - ProtocolConstants.RekeyTimeout;
        }
        _lastInitiationAt = now;
        NoteStillTrying(to, now);
        if (!_log.IsDebugEnabled || !_initiationLog.TryTake(now, InitiationLogInterval))
        {
            return;
        }
        _log.Debug("peer {PublicKey}: sending handshake initiation to {Endpoint} (attempt {Attempt})", _slot.KeyBase64, to, _initiationAttempts);
    }

    /// <summary>
    /// The time since the series' first initiation, less the gaps a suspend left: those between its
    /// initiations (see <see cref="NoteInitiationSent"/>) and one after its last, which a give-up
    /// the first timer after a resume finds has (it sends no initiation), each counted as one Rekey-Timeout.
    /// </summary>
    private TimeSpan TimeTrying(TimeSpan now) =>
        now - _lastInitiationAt is var gap && gap > InitiationGapOfASuspend
            ? _lastInitiationAt + ProtocolConstants.RekeyTimeout - _firstInitiationAt
            : now - _firstInitiationAt;

    /// <summary>
    /// Initiations unanswered for Rekey-Attempt-Time (whitepaper section 6.4) while packets for the
    /// peer kept coming: each such packet restarts the engine's attempts (as wireguard-go's
    /// SendHandshakeInitiation(isRetry: false) does), so it never gives up and <see cref="NoteGiveUp"/>
    /// never speaks. Without this line a laptop pinging a Gateway that was gone (frozen, moved to
    /// another address) logged nothing at Information for as long as the outage lasted. Said once
    /// per outage, not while a give-up's line stands; the next completed handshake says it ended.
    /// </summary>
    private void NoteStillTrying(UdpEndpoint to, TimeSpan now)
    {
        if (_gaveUpAt is not null || _stillTryingSince is not null || _initiationAttempts < 2
            || TimeTrying(now) is var trying && trying < ProtocolConstants.RekeyAttemptTime)
        {
            return;
        }
        _stillTryingSince = _firstInitiationAt;
        _log.Info("peer {PublicKey}: handshake with {Endpoint} has not completed after {Attempts} attempts in {Seconds} s; still trying while there is traffic for it",
            _slot.KeyBase64, to, _initiationAttempts, (long)trying.TotalSeconds);
    }

    /// <summary>
    /// The socket did not send some of this peer's datagrams since the last line (counted off the
    /// lock by whichever thread sent them): a warning at most every <see cref="NotSentLogInterval"/>,
    /// with the reason, as wireguard-go logs "Failed to send handshake initiation: ... network is
    /// unreachable". Seen at the step after the send, since sends happen after the step.
    /// </summary>
    private void NoteNotSent(TimeSpan now)
    {
        long notSent = PeerCounters.Read(ref _counters.DatagramsNotSent);
        if (notSent == 0 || !_notSentLog.TryTake(notSent, now, NotSentLogInterval))
        {
            return;
        }
        var (errno, to) = _counters.LastNotSent;
        _log.Warning("peer {PublicKey}: datagrams to {Endpoint} were not sent: {SendError}; {NotSentCount} not sent so far (not counted in its transfer)",
            _slot.KeyBase64, to, Native.Errno.Describe(errno), notSent);
    }

    /// <summary>
    /// The engine's last-handshake time moved: a new session, on the initiator when the response
    /// was consumed, on the responder when the initiator's first data confirmed it (whitepaper
    /// section 6.1). Once per handshake, not per packet.
    /// </summary>
    private void NoteHandshakeTime(DateTime? lastHandshake, TimeSpan now)
    {
        if (lastHandshake == _lastHandshakeSeen)
        {
            return;
        }
        _lastHandshakeSeen = lastHandshake;
        _initiationAttempts = 0;
        if (lastHandshake is null)
        {
            return;
        }
        TimeSpan? stillTryingSince = _stillTryingSince;
        _stillTryingSince = null;
        if (_gaveUpAt is { } gaveUpAt)
        {
            // The end of an outage that NoteGiveUp reported: said at the same level, once.
            _gaveUpAt = null;
            _log.Info("peer {PublicKey}: handshake completed with {Endpoint} after {Seconds} s without a session (since the handshake gave up)",
                _slot.KeyBase64, _peer.Endpoint, (long)(now - gaveUpAt).TotalSeconds);
        }
        else if (stillTryingSince is { } since)
        {
            // The end of an outage that NoteStillTrying reported: said at the same level, once.
            _log.Info("peer {PublicKey}: handshake completed with {Endpoint} after {Seconds} s of unanswered initiations",
                _slot.KeyBase64, _peer.Endpoint, (long)(now - since).TotalSeconds);
        }
        else if (_log.IsDebugEnabled)
        {
            _log.Debug("peer {PublicKey}: handshake completed with {Endpoint}, new session", _slot.KeyBase64, _peer.Endpoint);
        }
    }

    /// <summary>
    /// The engine stopped retransmitting an initiation nobody answered for Rekey-Attempt-Time
    /// (whitepaper section 6.4): the peer is unreachable, and the Debug lines about its attempts stop
    /// here. Said at Information, once per give-up (at most one per peer every 90 s, only for a peer
    /// something wanted to reach), as wireguard-go says "Handshake did not complete after 20
    /// attempts, giving up": without it a log at the default level said nothing about an outage of
    /// minutes. The next completed handshake says the outage is over.
    /// </summary>
    private void NoteGiveUp(long giveUps, TimeSpan now)
    {
        if (giveUps == _giveUpsSeen)
        {
            return;
        }
        _giveUpsSeen = giveUps;
        _gaveUpAt = now;
        long seconds = _initiationAttempts == 0 ? 0 : (long)TimeTrying(now).TotalSeconds;
        _log.Info("peer {PublicKey}: handshake with {Endpoint} did not complete after {Attempts} attempts in {Seconds} s, giving up until there is traffic for it (whitepaper section 6.4: REKEY_ATTEMPT_TIME)",
            _slot.KeyBase64, _peer.Endpoint, _initiationAttempts, seconds);
        _initiationAttempts = 0;
    }

    private void HandleOpened(PacketBuffer datagram, OpenResult result, PeerOutput output, TimeSpan now)
    {
        switch (result)
        {
            case OpenResult.Packet:
                if (datagram.Ecn == Ecn.Ce)
                {
                    _counters.CeDatagramsReceived++;
                }
                DeliverInner(datagram, output, now);
                return;
            case OpenResult.Keepalive:
                if (datagram.Ecn == Ecn.Ce)
                {
                    _counters.CeDatagramsReceived++;
                }
                break;
            case OpenResult.AuthenticationFailed:
                _counters.AuthenticationFailures++;
                break;
            case OpenResult.Replayed:
                _counters.ReplayedRejected++;
                break;
            case OpenResult.NoKeypair:
                _counters.NoKeypairRejected++;
                break;
            case OpenResult.SourceNotAllowed:
                _counters.SourceNotAllowedRejected++;
                break;
            default:
                _counters.MalformedRejected++;
                break;
        }
        datagram.Return();
    }

    /// <summary>Copy-out, RFC 6040 section 4.2, then on to the TUN.</summary>
    private void DeliverInner(PacketBuffer packet, PeerOutput output, TimeSpan now)
    {
        if (_config.EcnMode != EcnMode.Off)
        {
            var data = packet.Data;
            var outer = packet.Ecn;
            if (IpPacket.TryGetEcn(data, out var before) == IpParseStatus.Ok)
            {
                var result = IpPacket.ApplyDecapsulation(data, outer, out _);
                if (result.IsUnexpected)
                {
                    _counters.EcnUnexpected++;
                    LogUnexpectedEcn(before, outer, result.IsDrop, now);
                }
                if (result.IsDrop)
                {
                    // Not-ECT inner, CE outer: the congestion signal cannot be passed on, so drop.
                    _counters.EcnDrops++;
                    packet.Return();
                    return;
                }
                if (result.Inner == Ecn.Ce && before != Ecn.Ce)
                {
                    _counters.CeMarksPropagated++;
                }
            }
        }
        _counters.RxPackets++;
        _counters.RxPacketBytes += packet.Length;
        output.AddPacket(packet);
    }

    private void LogUnexpectedEcn(Ecn inner, Ecn outer, bool dropped, TimeSpan now)
    {
        // RFC 6040 section 4.2: (!!!) combinations should be logged; rate-limited so a
        // misbehaving path cannot flood the log (and no formatting per packet otherwise).
        if (!_log.IsWarningEnabled || !_unexpectedEcnLog.TryTake(now, UnexpectedEcnLogInterval))
        {
            return;
        }
        // Two templates rather than a text fragment (", packet dropped" or nothing) as a property.
        long count = PeerCounters.Read(ref _counters.EcnUnexpected);
        if (dropped)
        {
            _log.Warning("peer {PublicKey}: unexpected ECN combination inner {InnerEcn} / outer {OuterEcn} (RFC 6040 section 4.2 (!!!)), packet dropped; {UnexpectedEcnCount} such packets so far",
                _slot.KeyBase64, inner, outer, count);
        }
        else
        {
            _log.Warning("peer {PublicKey}: unexpected ECN combination inner {InnerEcn} / outer {OuterEcn} (RFC 6040 section 4.2 (!!!)); {UnexpectedEcnCount} such packets so far",
                _slot.KeyBase64, inner, outer, count);
        }
    }

    /// <summary>
    /// A datagram for the output. <paramref name="inTransfer"/>: the socket adds it to the peer's
    /// transfer and ECN sent counts once sent (false: a cookie reply, counted by no peer).
    /// </summary>
    private void AddDatagram(PacketBuffer datagram, PeerOutput output, bool inTransfer = true)
    {
        output.AddDatagram(datagram, inTransfer ? _counters : null);
    }

    /// <summary>
    /// After every step: drain what the engine wants to transmit (counting staged packets as sent
    /// now), note whether the actor's timer must fire earlier, and publish the engine's view for
    /// status. True when the engine transmitted anything.
    /// </summary>
    private bool AfterStep(PeerOutput output, TimeSpan now, bool fromReader)
    {
        var peer = _peer;
        bool transmitted = false;
        while (peer.PollTransmit(out var datagram))
        {
            transmitted = true;
            if (_staged is { Count: not 0 } staged && staged.Remove(datagram, out int length)
                && datagram.Length > MessageHeader.TransportMinSize
                && MessageHeader.Classify(datagram.Data, out _) == MessageType.TransportData)
            {
                // A packet staged behind the handshake, now sealed (the same buffer object): sent.
                // A stale entry's buffer reused for a handshake message or a keepalive is no packet.
                _counters.TxPackets++;
                _counters.TxPacketBytes += length;
            }
            else if (MessageHeader.Classify(datagram.Data, out _) == MessageType.Initiation)
            {
                NoteInitiationSent(datagram.Endpoint, now);
            }
            AddDatagram(datagram, output);
        }
        if (_staged is { Count: not 0 } && peer.StagedCount == 0)
        {
            // Nothing staged and the transmit queue drained: what is left here was dropped by the engine.
            _staged.Clear();
        }
        else if (_staged is { Count: > StagedLengthsPruneAt } held)
        {
            PruneStagedLengths(held, peer);
        }
        // Re-arm only when the engine wants to be woken earlier than the armed timer. A later or
        // absent deadline leaves the armed timer to fire early: HandleTimeout then finds nothing
        // due and the timer is re-armed for the real deadline. Deadlines move with almost every
        // packet (keepalive, new-handshake timers), so this keeps the scheduler off the hot path.
        var deadline = peer.PollTimeout();
        if (deadline is { } due && (_armed is null || due < _armed.Value))
        {
            _armed = due;
            if (!_armRequested)
            {
                _armRequested = true;
                if (fromReader)
                {
                    // Only the actor may touch its timers; from the actor the request is read at once.
                    _connection.Tell(RearmPeerTimer.Instance, ActorRefs.NoSender);
                }
            }
        }
        var lastHandshake = peer.LastHandshakeUtc;
        NoteHandshakeTime(lastHandshake, now);
        NoteGiveUp(peer.HandshakeGiveUps, now);
        _counters.Publish(peer.Endpoint, peer.LocalAddress, lastHandshake, peer.RxBytes);
        NoteNotSent(now);
        return transmitted;
    }
}
