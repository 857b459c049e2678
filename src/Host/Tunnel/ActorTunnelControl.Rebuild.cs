using Akka.Actor;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Native;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>Rebuilding the tunnel (a new key, port or buffer size): what is carried to the new one, and stopping the old one.</summary>
public sealed partial class ActorTunnelControl
{
    /// <summary>
    /// Stops the running tunnel (if any) and starts one with the current key, socket and peers.
    /// <paramref name="keepSessions"/> (the same private key and port, only bigger buffers): the
    /// peers' sessions go on in the new tunnel (<see cref="PeerHandovers"/>), as wireguard-go keeps
    /// them through an MTU change; otherwise the peers that had one handshake at its start.
    /// </summary>
    private async Task RebuildAsync(LinuxUdpSocket? newSocket, int? newPoolMtu = null, bool keepSessions = false)
    {
        // What can fail without the running tunnel's I/O (the MTU read by the interface's index, the
        // engine device) comes first: a failure then leaves the running tunnel as it is.
        Device? device;
        PacketBufferPool pool;
        try
        {
            (device, pool) = PrepareDevice(newPoolMtu);
        }
        catch
        {
            newSocket?.Dispose(); // the running tunnel keeps its socket
            throw;
        }
        try
        {
            await ReplaceTunnelAsync(newSocket, device, pool, keepSessions).ConfigureAwait(false);
        }
        catch
        {
            if (!ReferenceEquals(_device, device))
            {
                device?.Dispose(); // never ran: forget its static key
            }
            if (newSocket is not null && !ReferenceEquals(_socket, newSocket))
            {
                newSocket.Dispose();
            }
            throw;
        }
    }

    /// <summary>
    /// The engine device for <see cref="_privateKey"/> (null without one) on the pool it needs: the
    /// running one, or one for <paramref name="newPoolMtu"/> or the interface's live MTU when its
    /// packets would not fit. Touches nothing the running tunnel uses.
    /// </summary>
    private (Device? Device, PacketBufferPool Pool) PrepareDevice(int? newPoolMtu)
    {
        var pool = newPoolMtu is int poolMtu ? PacketBufferSizing.PoolFor(poolMtu) : _pool;
        if (_privateKey is not { } privateKey || _linkDown)
        {
            // No key, or the link is down: no tunnel runs (one starts when both are there).
            return (null, pool);
        }
        // The live MTU, not the one at open: wg-quick may have changed it since. By index: the
        // interface may have been renamed.
        int mtu = NetworkInterfaceControl.GetMtu(_tun!.Index, out _);
        if (PacketBufferSizing.BufferSizeFor(mtu) > pool.BufferSize)
        {
            pool = PacketBufferSizing.PoolFor(mtu);
        }
        // The live wall clock for handshake timestamps: a clock NTP corrects after start is picked up (whitepaper 5.4.2).
        var device = new Device(privateKey, pool, CryptoRandomSource.Instance, _clock.WallClockAtZero, static () => DateTime.UtcNow,
            _crypto!.X25519, _crypto.TransportAead) { Mtu = mtu };
        return (device, pool);
    }

    /// <summary>Stops the running tunnel (if any) and starts one on <paramref name="device"/> (none without a key).</summary>
    private async Task ReplaceTunnelAsync(LinuxUdpSocket? newSocket, Device? device, PacketBufferPool pool, bool keepSessions)
    {
        bool wasRunning = _tunnel is not null;
        await StopReadingAsync().ConfigureAwait(false);
        var handshakeAtStart = await CarryPeerStateAsync().ConfigureAwait(false);
        // What an earlier rebuild handed over and no peer took (rare: a peer whose start failed) goes now.
        _takenOverFrom?.Dispose();
        _takenOverFrom = null;
        var handovers = _handovers;
        _handovers = null;
        if (keepSessions)
        {
            handovers?.Collect();
        }
        bool stopped = await StopTunnelAsync().ConfigureAwait(false);
        if (keepSessions && handovers is not null)
        {
            // Each session was moved out under its peer's lock, so none is used twice, also from a
            // tunnel that did not stop in time.
            _takenOverFrom = handovers;
            logger.LogDebug("{Count} peer session(s) handed over to the rebuilt tunnel", handovers.Count);
        }
        else
        {
            handovers?.Dispose();
        }
        if (!ReferenceEquals(pool, _pool))
        {
            // The old pool is dropped whole; the stopped tunnel's buffers come back to it (PostStop,
            // dead letters), checked off the rebuild's path so the new tunnel does not wait for it.
            _ = WarnIfNotReturnedAsync(_pool, "before the pool was replaced");
            _pool = pool;
        }
        // Held until the duplicates are made: a rebuild that fails first (a duplicate refused, out of
        // descriptors) leaves no tunnel, and the next one (the rollback to the previous key, the
        // next change) must not start on objects whose readers would end at once.
        _devicesHeld |= wasRunning && !stopped;
        if (!_devicesHeld && wasRunning)
        {
            // The stopped readers left the TUN's and socket's wake events signalled: clear them and
            // keep both descriptors. Closing and reopening them (as before) let another process take
            // the UDP port or the interface name in between, leaving no tunnel.
            _tun!.RearmAfterStop();
            if (newSocket is null)
            {
                _socket?.RearmAfterStop();
            }
        }
        else if (_devicesHeld)
        {
            // The old tunnel (this one's, or an earlier rebuild's that failed before it made the
            // duplicates) did not stop in time: a reader thread of it may still be in a call on
            // the TUN device or the socket, its wake-up signalled but not yet seen (re-armed, it
            // would read on). The new tunnel gets a TUN device object of its own on a duplicate of
            // the descriptor: the same interface, whatever it is called now, with its addresses and
            // routes, and no moment in which another process could take its name. Closing the
            // device and opening the interface again by name (as before) was refused while that
            // thread held the old descriptor ("already in use"): the key change failed, and the
            // interface, made persistent for the reopen, outlived the daemon.
            var tun = _tun!.Duplicate();
            _tun.Dispose(); // its descriptor closes once the held thread lets go
            _tun = tun;
            if (newSocket is null && _socket is not null)
            {
                // The same for the socket: closed and bound again (as before), its port was still
                // bound while that thread held it (EADDRINUSE), and the daemon was left with no tunnel.
                var socket = _socket.Duplicate();
                _socket.Dispose();
                _socket = socket;
            }
            _devicesHeld = false; // a socket of the port change (below) replaces the held one
        }
        if (newSocket is not null)
        {
            _socket?.Dispose();
            _socket = newSocket;
        }
        if (device is null)
        {
            return; // no key, or the link is down
        }
        _socket ??= Bind(_listenPort);
        _device = device;
        _handovers = new PeerHandovers();
        var settings = TunnelSettings.ForEngine(device, _tun!, _socket, _clock, _failureListener) with
        {
            ReplyPollMax = options.ReplyPollMax,
            ReadModeration = options.ReadModeration,
            HandOverTo = _handovers,
            TakeOverFrom = _takenOverFrom,
            StartReadingPaused = wasRunning,
            Counters = _tunnelCounters = new TunnelCounters(),
        };
        _takenOverFrom?.ReserveIndices(device.Indices);
        _tunnel = new TunnelClient(
            Tunnels.Start(_system!, settings, "tunnel-" + (++_generation).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            AskTimeout);
        try
        {
            if (_peers.Count > 0)
            {
                var peers = new List<PeerConfig>(_peers.Values);
                await ApplyCarriedPeersAsync(_tunnel, new ApplyPeerChanges(false, [], peers, handshakeAtStart, CarriedOver: true), logger, _generation, _stopping.Token).ConfigureAwait(false);
            }
            // Sessions handed over for a peer the rebuilt tunnel does not have: no peer takes them,
            // and the indices reserved for them would stay claimed in its table.
            _takenOverFrom?.DisposeUnconfigured(_peers.ContainsKey);
        }
        finally
        {
            // A rebuilt tunnel reads only now (StartReadingPaused): what waited in the queues finds its peers.
            _tunnel.Tunnel.Tell(StartReading.Instance);
        }
        // The tick as the running actor system has it, so the log shows what took effect.
        var timerTick = _system!.Settings.Config.GetTimeSpan("akka.scheduler.tick-duration", null, allowInfinite: false);
        // The first tunnel starts on its key, before the peers of the same set (wg setconf under
        // wg-quick) or of the file (service mode) are added: "with 0 peer(s)" read as if there were none.
        string peerCount = _peers.Count > 0 || wasRunning
            ? $"with {_peers.Count} peer(s)"
            : options.Config is null
                ? "with no peers yet (they come over the UAPI socket: wg setconf, wg set)"
                : "with no peers yet (the configuration file's are added next)";
        logger.LogInformation("Tunnel {Generation} running on UDP port {Port} (receive merging {UdpGro}, send merging {UdpGso}, receive queue {ReceiveQueueBytes} bytes booked) {Peers:l}, reply polling up to {ReplyPollMicroseconds} us, read moderation {ReadModerationMicroseconds} us, timer tick {TimerTickMilliseconds} ms ({Scheduler:l}), X25519 from {X25519:l}, ChaCha20-Poly1305 from {TransportAead:l}",
            _generation, _socket.LocalPort, _socket.GroEnabled ? "on" : "off", _socket.GsoEnabled ? "on" : "off", _socket.ReceiveBufferSize, peerCount, (int)options.ReplyPollMax.TotalMicroseconds,
            (int)options.ReadModeration.TotalMicroseconds, (int)timerTick.TotalMilliseconds,
            _system.Scheduler.GetType().Name, _crypto!.X25519.Name, _crypto.TransportAead.Name);
    }

    /// <summary>
    /// Gives the rebuilt tunnel (<paramref name="generation"/>) its peers and waits until it has them
    /// all: true once it confirmed them; false when it stopped first (a tunnel that fails is reported
    /// by the failure listener) or <paramref name="stopping"/> ended the wait (the daemon stops).
    /// Past the Ask's usual bound (thousands of peers on a busy machine) the wait goes on, with a
    /// Warning, as wireguard-go's set applies every peer before it answers and its get waits for the
    /// set. Thrown at the bound, a late answer made `wg set` report EIO for a key that was applied
    /// and dropped the rest of its request; given up at the bound, the rebuilt tunnel read before its
    /// peers were in place (packets of the peers not added yet met no route), and the next `wg show`
    /// waited behind them in the tunnel's mailbox until its own bound (EIO).
    /// </summary>
    internal static async Task<bool> ApplyCarriedPeersAsync(TunnelClient tunnel, ApplyPeerChanges changes, ILogger logger, int generation, CancellationToken stopping)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        bool late = false;
        try
        {
            var applied = await tunnel.ApplyPeerChangesAsync(changes, stopping, bound =>
            {
                late = true;
                logger.LogWarning("Tunnel {Generation} has not confirmed its {Count} peer(s) within {Seconds} s; waiting for them (it reads, and `wg show` answers, once they are in place)",
                    generation, changes.Upsert.Count, bound.TotalSeconds);
            }).ConfigureAwait(false);
            if (applied is null)
            {
                logger.LogWarning("Tunnel {Generation} stopped before it confirmed its {Count} peer(s)", generation, changes.Upsert.Count);
                return false;
            }
            if (late)
            {
                logger.LogInformation("Tunnel {Generation} confirmed its {Count} peer(s) after {Seconds:0.0} s",
                    generation, changes.Upsert.Count, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
            return true;
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            return false; // the daemon stops: nothing reads the rebuilt tunnel's peers any more
        }
    }

    /// <summary>
    /// After a key change whose rebuild failed (<paramref name="failure"/>, reported to the caller):
    /// the daemon goes on with <paramref name="previous"/>. A failure before the running tunnel was
    /// touched (the MTU read, the engine device) left it running; one after it stopped (duplicating the
    /// TUN device's or the socket's descriptor after a stop that timed out) starts a tunnel with the
    /// previous key again, on duplicates too (<see cref="_devicesHeld"/>: the objects the stuck thread
    /// holds have their wake-ups signalled, and readers on them would end at once), whose peers
    /// handshake at once as after any rebuild. Never a tunnel half built:
    /// either one runs with the key `wg show` reports, or none runs and the log says so.
    /// </summary>
    private async Task RollBackKeyAsync(WireGuardKey? previous, Exception failure)
    {
        if (previous is null)
        {
            logger.LogError("The private key was not applied ({Problem}); no tunnel runs until a key is set",
                failure.Message.ReplaceLineEndings(" "));
            return;
        }
        if (_tunnel is not null)
        {
            logger.LogError("The new private key was not applied ({Problem}); the tunnel goes on with the previous one",
                failure.Message.ReplaceLineEndings(" "));
            return;
        }
        if (_linkDown)
        {
            logger.LogError("The new private key was not applied ({Problem}); the tunnel starts with the previous one when the link is up",
                failure.Message.ReplaceLineEndings(" "));
            return;
        }
        try
        {
            await RebuildAsync(newSocket: null).ConfigureAwait(false);
            logger.LogError("The new private key was not applied ({Problem}); the tunnel was started again with the previous one",
                failure.Message.ReplaceLineEndings(" "));
        }
        catch (Exception e)
        {
            logger.LogError("The new private key was not applied ({Problem}), and the tunnel with the previous one could not be started again ({RollbackProblem}): no tunnel runs until a key is set",
                failure.Message.ReplaceLineEndings(" "), e.Message.ReplaceLineEndings(" "));
        }
    }

    /// <summary>
    /// Before a rebuild: keeps each peer's figures (<see cref="CarriedPeerState"/>) and the endpoint it
    /// last used (roaming may have changed it from the configured one, and the rebuilt tunnel must
    /// reach the peer there). Returns the peers that had a session within REJECT_AFTER_TIME and have
    /// an endpoint: they handshake as soon as the rebuilt tunnel starts, so the other side, which still
    /// sends on the old session (to the old port, after a port change), moves to the new one within a
    /// round trip instead of at its next rekey (wireguard-go keeps the session itself; a rebuilt
    /// engine device cannot). When no tunnel runs, the same from what the last one carried. The status
    /// is waited for past the Ask's usual bound (with a Warning) until the old tunnel answers, stops
    /// or the daemon stops, as the carried peers are (<see cref="ApplyCarriedPeersAsync"/>): given up
    /// at the bound, a key change on a busy daemon with thousands of peers lost every peer's
    /// counters, latest handshake and roamed endpoint, and the handshakes at the new tunnel's start,
    /// which wireguard-go keeps.
    /// </summary>
    private async Task<IReadOnlySet<WireGuardKey>?> CarryPeerStateAsync()
    {
        if (_tunnel is null)
        {
            return HandshakeAfterFailedRebuild();
        }
        Control.DeviceStatus status;
        try
        {
            status = Map(await StatusOfAsync(_tunnel, logger, _generation, "the rebuild carries its peers' counters and endpoints over once it does", _stopping.Token)
                .ConfigureAwait(false));
        }
        catch (Control.TunnelControlException e)
        {
            logger.LogWarning("The tunnel did not report its peers before the rebuild: their counters and learned endpoints start over ({Problem})", e.Message);
            return null;
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return null; // the daemon stops: the rebuilt tunnel does not run for long
        }
        var handshake = new HashSet<WireGuardKey>();
        var now = DateTimeOffset.UtcNow;
        foreach (var peer in status.Peers)
        {
            var key = peer.Config.PublicKey;
            if (peer.RxBytes != 0 || peer.TxBytes != 0 || peer.LastHandshake is not null || peer.Ecn != default || peer.Drops != default)
            {
                _carried[key] = CarriedPeerState.Of(peer);
            }
            if (!peer.Endpoint.IsNone && _peers.TryGetValue(key, out var config) && config.Endpoint != peer.Endpoint)
            {
                Remember(config with { Endpoint = peer.Endpoint });
            }
            if (HandshakesAtStart(peer.LastHandshake, peer.Endpoint, now))
            {
                handshake.Add(key);
            }
        }
        return handshake;
    }

    /// <summary>
    /// The peers to handshake at start when no tunnel runs: a rebuild failed after it stopped the one
    /// before (the rollback of a key change, or the change after that), or the link was down (see
    /// ActorTunnelControl.Link.cs), and the sessions ended with the tunnel that stopped.
    /// Those it had within REJECT_AFTER_TIME (<see cref="_carried"/> from that rebuild) and that have an
    /// endpoint, as for a running tunnel: the other side, still sending on the old session, otherwise
    /// went unheard until its own retry (15 s after its first unanswered packet). Null when none.
    /// </summary>
    private HashSet<WireGuardKey>? HandshakeAfterFailedRebuild()
    {
        HashSet<WireGuardKey>? handshake = null;
        var now = DateTimeOffset.UtcNow;
        foreach (var (key, carried) in _carried)
        {
            if (_peers.TryGetValue(key, out var config) && HandshakesAtStart(carried.LastHandshake, config.Endpoint, now))
            {
                (handshake ??= []).Add(key);
            }
        }
        return handshake;
    }

    /// <summary>
    /// A peer handshakes as soon as a rebuilt tunnel starts when it had a session within
    /// REJECT_AFTER_TIME (the other side may still send on it) and has an endpoint to reach it at.
    /// </summary>
    private static bool HandshakesAtStart(DateTimeOffset? lastHandshake, UdpEndpoint endpoint, DateTimeOffset now) =>
        lastHandshake > now - ProtocolConstants.RejectAfterTime && !endpoint.IsNone;

    /// <summary>
    /// Before a rebuild: the running tunnel stops reading (see <see cref="StopReading"/>), so packets
    /// and datagrams that arrive during the rebuild wait in the kernel's queues for the new tunnel
    /// instead of being read by the old one as its peers stop, and lost (a ping sent right after
    /// <c>ip link set mtu 9000 up</c> got no answer). Its peers still send what was read.
    /// </summary>
    private async Task StopReadingAsync()
    {
        if (_tunnel is not { } tunnel)
        {
            return;
        }
        try
        {
            await tunnel.Tunnel.Ask<ReadingStopped>(StopReading.Instance, TunnelStopBound).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TaskCanceledException or AskTimeoutException)
        {
            logger.LogWarning("The tunnel's readers did not stop within {Seconds} s before the rebuild", TunnelStopBound.TotalSeconds);
        }
    }

    /// <summary>How long a leak check waits for a stopped tunnel's buffers (see <see cref="PoolReturns"/>).</summary>
    private static readonly TimeSpan ReturnsBound = TimeSpan.FromSeconds(1);

    /// <summary>A leak check of a stopped tunnel's pool; <paramref name="when"/> ends the warning's text.</summary>
    private async Task WarnIfNotReturnedAsync(PacketBufferPool pool, string when)
    {
        if (await PoolReturns.OutstandingAfterAsync(pool, ReturnsBound).ConfigureAwait(false) is int outstanding and not 0)
        {
            logger.LogWarning("{Outstanding} packet buffers were not returned {When:l}", outstanding, when);
        }
    }

    /// <summary>
    /// How long the running tunnel gets to stop reading, and to stop: longer than each reader
    /// actor's join (<see cref="Tunnels.ReaderStopBound"/>), so a stop the actors are still making is
    /// never given up on; within the 2 s that a stop of the daemon is meant to take.
    /// </summary>
    internal static readonly TimeSpan TunnelStopBound = TimeSpan.FromSeconds(2);

    /// <summary>Stops the running tunnel, if any; false when it did not stop in time (its threads may still run).</summary>
    private async Task<bool> StopTunnelAsync()
    {
        var device = _device;
        _device = null;
        var counters = _tunnelCounters;
        _tunnelCounters = null;
        if (_tunnel is { } tunnel)
        {
            _tunnel = null;
            try
            {
                await tunnel.Tunnel.GracefulStop(TunnelStopBound).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TaskCanceledException or AskTimeoutException)
            {
                // A thread of it may still handshake: its key is left to the finalizer.
                logger.LogWarning("The tunnel did not stop within {Seconds} s", TunnelStopBound.TotalSeconds);
                return false;
            }
            if (counters?.ReaderThreadsRunning is int running and > 0)
            {
                // Its actors stopped, but a reader thread did not end (its actor logged it): the
                // TUN device and socket are still in its hands, and so is the engine device.
                logger.LogWarning("The tunnel stopped with {Count} reader thread(s) still running", running);
                return false;
            }
        }
        device?.Dispose(); // its actors and reader threads have stopped: forget the old static key
        return true;
    }
}
