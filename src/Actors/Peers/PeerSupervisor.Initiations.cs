using Akka.Actor;
using Akka.Event;
using Firezone.Actors.Actors.Socket;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Peers;

/// <summary>Handshake initiations from the socket reader: admitted under load (cookies, whitepaper section 5.3), routed to their peers, and the rate-limited log lines about them.</summary>
public sealed partial class PeerSupervisor
{
    /// <summary>How long the device stays under load after an initiation found it so (wireguard-go's UnderLoadAfterTime).</summary>
    private static readonly TimeSpan UnderLoadAfterTime = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Initiations: check mac1/mac2 (whitepaper section 5.3), answer with a cookie reply when under
    /// load (and hold each proved source to its share), then route by the initiator's static key, which only decryption reveals (section 5.4.2).
    /// </summary>
    private void HandleInitiations(InboundHandshakes batch)
    {
        // Taken up: no longer waiting in the queue SocketIO bounds (SocketIO.MaxQueuedHandshakes).
        Interlocked.Add(ref _counters.HandshakesQueued, -batch.Count);
        var now = _clock.Now;
        LogHandshakeQueueFull(now);
        if (now - _loadWindowStart >= TimeSpan.FromSeconds(1))
        {
            _loadWindowStart = now;
            _handshakesInWindow = 0;
        }
        SendDatagrams? cookies = null;
        for (int i = 0; i < batch.Count; i++)
        {
            var datagram = batch[i];
            if (datagram is null)
            {
                continue;
            }
            bool underLoad = IsUnderLoad(now);
            // Room for a cookie reply: those already told to SocketIO and not sent yet, and this batch's.
            bool cookieReplyAllowed = Volatile.Read(ref _counters.CookieRepliesQueued) + (cookies?.Count ?? 0) < SocketIO.MaxQueuedCookieReplies;
            var admission = _device.AdmitHandshake(datagram, underLoad, now, out var cookieReply, cookieReplyAllowed);
            if (admission != HandshakeAdmission.Reject)
            {
                CountTowardsLoad(now);
            }
            if (cookieReply is not null)
            {
                (cookies ??= SendDatagrams.Rent()).Add(cookieReply, sender: null); // no peer counts a cookie reply
                Interlocked.Increment(ref _counters.CookieRepliesSent);
            }
            if (admission != HandshakeAdmission.Accept)
            {
                if (admission == HandshakeAdmission.Reject)
                {
                    Interlocked.Increment(ref _counters.HandshakesRejected);
                    LogDroppedInitiation(datagram.Endpoint, "mac1 check failed (the sender does not use this interface's public key, or it is no WireGuard initiation)", now);
                }
                else if (admission == HandshakeAdmission.Overloaded)
                {
                    Interlocked.Increment(ref _counters.HandshakesRejected);
                    LogDroppedInitiation(datagram.Endpoint, "under load and no room for a cookie reply (no packet buffer free, or too many waiting to be sent)", now);
                }
                else if (admission == HandshakeAdmission.RateLimited)
                {
                    Interlocked.Increment(ref _counters.HandshakesRateLimited);
                    LogDroppedInitiation(datagram.Endpoint, "under load and its address sent more than its share of initiations (20 a second, bursts of 5)", now);
                }
                batch.Take(i)!.Return();
                continue;
            }
            if (!_device.TryIdentifyInitiator(datagram, out var initiator))
            {
                Interlocked.Increment(ref _counters.HandshakesUnknownPeer);
                LogDroppedInitiation(datagram.Endpoint, "the initiator's static key does not decrypt", now);
                batch.Take(i)!.Return();
                continue;
            }
            if (!_peers.TryGetValue(initiator, out var entry))
            {
                Interlocked.Increment(ref _counters.HandshakesUnknownPeer);
                if (_log.IsDebugEnabled && _droppedInitiationLog.IsDue(now))
                {
                    LogDroppedInitiation(datagram.Endpoint, "initiator " + initiator.ToBase64() + " is not a configured peer", now);
                }
                batch.Take(i)!.Return();
                continue;
            }
            if (!_groups.TryGetValue(entry.Connection, out var group))
            {
                group = InboundDatagrams.Rent();
                _groups.Add(entry.Connection, group);
            }
            group.Add(batch.Take(i)!);
        }
        batch.Recycle();
        foreach (var pair in _groups)
        {
            pair.Key.Tell(pair.Value, Self);
        }
        _groups.Clear();
        if (cookies is not null)
        {
            // Counted before it is told, so SocketIO's subtraction never comes first.
            cookies.CookieReplies = cookies.Count;
            Interlocked.Add(ref _counters.CookieRepliesQueued, cookies.Count);
            _socketIO.Tell(cookies, Self);
            LogCookieReplies(now);
        }
    }

    /// <summary>
    /// Whether the next initiation finds the device under load: it would be one more than
    /// HandshakesPerSecondUnderLoad in the current one-second window, or it comes in the second
    /// after the last initiation that found it so: as wireguard-go's IsUnderLoad
    /// (UnderLoadAfterTime), a flood that goes on into the next window stays under load, instead of
    /// letting that window's first initiations past the cookie check.
    /// </summary>
    private bool IsUnderLoad(TimeSpan now) =>
        _handshakesInWindow + 1 > _options.HandshakesPerSecondUnderLoad || now < _underLoadUntil;

    /// <summary>
    /// Counts an initiation that passed mac1 towards the load (see <see cref="IsUnderLoad"/>). One
    /// with a bad mac1 costs a BLAKE2s and is not counted: anyone can send those without the
    /// interface's public key (a scanner, a garbage flood), and counting them put the tunnel under load
    /// at 513 a second, so every honest peer's handshake waited a cookie round trip (Rekey-Timeout, 5 s).
    /// </summary>
    private void CountTowardsLoad(TimeSpan now)
    {
        _handshakesInWindow++;
        if (_handshakesInWindow > _options.HandshakesPerSecondUnderLoad)
        {
            _underLoadUntil = now + UnderLoadAfterTime;
        }
    }

    /// <summary>
    /// Cookie replies went out: the tunnel is under handshake load and makes initiators prove their
    /// address before it spends a Diffie-Hellman on them (whitepaper section 5.3). Honest peers
    /// then need one more round trip to connect, so an operator should know without debug logging.
    /// At most one Warning per 10 s, with the count.
    /// </summary>
    private void LogCookieReplies(TimeSpan now)
    {
        long sent = Interlocked.Read(ref _counters.CookieRepliesSent);
        if (!_cookieReplyLog.TryTake(sent, now, DroppedInitiationLogInterval))
        {
            return;
        }
        _log.Warning("under load (more than {HandshakesPerSecond} handshake initiations a second): answering initiations that carry no valid cookie with a cookie reply; {CookieReplyCount} cookie replies sent so far",
            _options.HandshakesPerSecondUnderLoad, sent);
        WatchLoad();
    }

    /// <summary>
    /// Initiations SocketIO dropped because the queue to this actor was full: an operator under a
    /// flood should see it without debug logging. At most one Warning per 10 s, with the count.
    /// </summary>
    private void LogHandshakeQueueFull(TimeSpan now)
    {
        long dropped = Interlocked.Read(ref _counters.HandshakesQueueFull);
        if (!_queueFullLog.TryTake(dropped, now, DroppedInitiationLogInterval))
        {
            return;
        }
        _log.Warning("{DroppedCount} handshake initiations dropped so far: more arrived than the handshake queue holds ({QueueSize}; a flood, or too slow a machine)",
            dropped, Socket.SocketIO.MaxQueuedHandshakes);
        WatchLoad();
    }

    /// <summary>Asks the supervisor whether the handshake load is over (<see cref="CheckLoadOver"/>).</summary>
    private sealed class LoadOverCheck
    {
        public static readonly LoadOverCheck Instance = new();
    }

    /// <summary>
    /// After a Warning about handshake load: the counts at the last check, and the check scheduled
    /// (null: no load watched).
    /// </summary>
    private struct LoadWatch
    {
        public ICancelable? Check;
        public long CookieReplies;
        public long QueueFull;
    }

    /// <summary>
    /// The Warnings about a flood of initiations come with the next initiation, at most every 10 s,
    /// so the last one's counts were not the flood's and nothing said it ended (the flood review:
    /// not a line after any flood). Once such a Warning is written, a check every 10 s says so at
    /// Information when a whole interval went by without a cookie reply or a dropped initiation,
    /// with the totals.
    /// </summary>
    private void WatchLoad()
    {
        if (_loadWatch.Check is not null)
        {
            return;
        }
        _loadWatch.CookieReplies = Interlocked.Read(ref _counters.CookieRepliesSent);
        _loadWatch.QueueFull = Interlocked.Read(ref _counters.HandshakesQueueFull);
        _loadWatch.Check = Context.System.Scheduler.ScheduleTellOnceCancelable(DroppedInitiationLogInterval, Self, LoadOverCheck.Instance, Self);
    }

    private void CheckLoadOver()
    {
        long cookieReplies = Interlocked.Read(ref _counters.CookieRepliesSent);
        long queueFull = Interlocked.Read(ref _counters.HandshakesQueueFull);
        if (cookieReplies != _loadWatch.CookieReplies || queueFull != _loadWatch.QueueFull || _clock.Now < _underLoadUntil)
        {
            _loadWatch.CookieReplies = cookieReplies;
            _loadWatch.QueueFull = queueFull;
            _loadWatch.Check = Context.System.Scheduler.ScheduleTellOnceCancelable(DroppedInitiationLogInterval, Self, LoadOverCheck.Instance, Self);
            return;
        }
        _loadWatch.Check = null;
        _log.Info("handshake load over: no cookie reply sent and no initiation dropped for a full queue in the last {Seconds} s; {CookieReplyCount} cookie replies sent and {DroppedCount} initiations dropped for a full queue since the tunnel started",
            DroppedInitiationLogInterval.TotalSeconds, cookieReplies, queueFull);
    }

    /// <summary>
    /// An initiation dropped before it reached a peer: mac1 failed, or its static key is unknown
    /// or does not decrypt. The clue for a peer that has the wrong public key for this interface
    /// or that is not configured here. Rate-limited for the whole tunnel, with the running count.
    /// </summary>
    private void LogDroppedInitiation(UdpEndpoint from, string reason, TimeSpan now)
    {
        if (!_log.IsDebugEnabled || !_droppedInitiationLog.TryTake(now, DroppedInitiationLogInterval))
        {
            return;
        }
        _log.Debug("dropped handshake initiation from {Endpoint}: {Reason}; {DroppedCount} initiations dropped before reaching a peer so far",
            from, reason, Interlocked.Read(ref _counters.HandshakesRejected) + Interlocked.Read(ref _counters.HandshakesUnknownPeer)
                + Interlocked.Read(ref _counters.HandshakesRateLimited));
    }
}
