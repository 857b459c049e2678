using Akka.Actor;
using System.Diagnostics;
using Akka.Hosting;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Time;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Daemon;
using Firezone.Actors.Host.Uapi;
using Firezone.Actors.Native;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// <see cref="ITunnelControl"/> over the actor topology. It owns the TUN device, the UDP socket and
/// the engine <see cref="Device"/>, and keeps the desired configuration (private key, port, fwmark,
/// peers) so that it can rebuild the tunnel: the engine device is created with its private key and
/// the socket with its port, so changing either (wg-quick sets both after the daemon has started)
/// stops the TunnelActor and starts a new one with the same peers. The TUN interface is kept across
/// a rebuild (its descriptor too, or a duplicate of it when the old tunnel did not stop in time), so
/// addresses and routes stay.
/// Peer changes go straight to the running tunnel as AddOrUpdatePeer / RemovePeer / RemoveAllPeers.
/// <para>
/// The TUN's MTU can change while the daemon runs: wg-quick runs <c>ip link set mtu</c> after
/// <c>wg setconf</c>. The engine's <see cref="Device.Mtu"/> caps transport padding (section 5.4.6),
/// so it is read from the kernel whenever a device is built, on every UAPI get and on every link
/// change the kernel announces over netlink (<see cref="LinkChangeListener"/>; a once-a-second poll
/// when that is unavailable). The packet
/// buffers must hold an MTU-sized packet and a pool cannot grow its buffers, so an MTU beyond them
/// rebuilds the tunnel on a pool sized for it (<see cref="PacketBufferSizing"/>).
/// </para>
/// </summary>
public sealed partial class ActorTunnelControl(
    DaemonOptions options,
    IServiceProvider services,
    ILogger<ActorTunnelControl> logger) : ITunnelControl, IHostedService
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The MTU a new interface gets when no <c>MTU =</c> says otherwise: wireguard-go's DefaultMTU, and
    /// what wg-quick picks on an ordinary 1500-byte path (1500 less 80 bytes of IPv6, UDP and
    /// WireGuard overhead). The kernel's TUN default of 1500 would make every full-size packet's
    /// datagram too big for the path. wg-quick sets its own MTU afterwards, as with wireguard-go.
    /// </summary>
    public const int DefaultMtu = 1420;

    private readonly SemaphoreSlim _gate = new(1, 1);
    // Only when link notifications are unavailable (see FollowMtu).
    private static readonly TimeSpan MtuPollInterval = TimeSpan.FromSeconds(1);

    private PacketBufferPool _pool = PacketBufferSizing.PoolFor(0);
    private Device? _device;
    private LinkChangeSignal? _linkChanges;
    private readonly CancellationTokenSource _stopping = new();
    private Task _mtuWatch = Task.CompletedTask;
    private readonly BootTimeClock _clock = new();
    // The desired peers in the order they were added (wg show lists them so), and who holds each
    // prefix so that moving one to another peer is a lookup, not a scan of every peer. The holder
    // is its current config (an 8-byte reference, not a 32-byte key: one entry per peer's prefix
    // on a Gateway with thousands of peers, issue 8).
    private readonly OrderedDictionary<WireGuardKey, PeerConfig> _peers = new();
    private readonly Dictionary<IpPrefix, PeerConfig> _prefixOwners = new();
    // Each peer's figures when the tunnel was last rebuilt, added to the live ones (CarriedPeerState);
    // only peers that had counted something.
    private readonly Dictionary<WireGuardKey, CarriedPeerState> _carried = new();
    // Where the running tunnel's peers hand their sessions over when it is rebuilt for bigger
    // buffers, and what the tunnel before it handed over (see PeerHandovers).
    private PeerHandovers? _handovers;
    private PeerHandovers? _takenOverFrom;
    private ActorSystem? _system;
    private TunnelCrypto? _crypto;
    private IActorRef? _failureListener;
    private LinuxTunDevice? _tun;
    private LinuxUdpSocket? _socket;
    private TunnelClient? _tunnel;
    private TunnelCounters? _tunnelCounters;
    // The TUN device and socket objects are still in the hands of a thread of a tunnel that did not
    // stop in time (their wake-ups signalled): the next tunnel runs on duplicates, also when the
    // rebuild that found them so failed before it made them (see ReplaceTunnelAsync).
    private bool _devicesHeld;
    private int _generation;
    // Set together by UseKey: the public half is what status reports while no tunnel runs.
    private WireGuardKey? _privateKey;
    private WireGuardKey? _publicKey;
    private ushort _listenPort;
    private uint _fwmark;
    private uint? _requiredFwmark;
    private readonly Lock _requiredFwmarkGate = new();

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _system = services.GetRequiredService<ActorSystem>();
        _failureListener = services.GetRequiredService<ActorRegistry>().Get<TunnelFailureListener>();
        // A name another daemon serves, or an OpenSSL without the cipher every message needs, is
        // refused before a TUN device exists, so nothing is left behind.
        UapiServer.EnsureAvailable(UapiSocketPath.For(options.InterfaceName, options.SocketDirectory));
        _crypto = TunnelCrypto.Choose();
        RehearseHandshake(_crypto);
        _tun = OpenTun(options.Config?.Interface.Mtu ?? DefaultMtu);
        if (PacketBufferSizing.BufferSizeFor(_tun.Mtu) > _pool.BufferSize)
        {
            _pool = PacketBufferSizing.PoolFor(_tun.Mtu);
        }
        logger.LogInformation("TUN device {Interface} created (MTU {Mtu}, {BufferSize}-byte packet buffers, offloads {Offloads}, UDP coalescing {UdpCoalescing})",
            _tun.Name, _tun.Mtu, _pool.BufferSize, _tun.Offloads, _tun.UdpCoalescing ? "on" : "off");
        // Bound at once (a random port until one is set), as wireguard-go binds: `wg show` of a fresh
        // interface shows its port. Datagrams that arrive before the tunnel starts wait in the socket.
        try
        {
            _socket = Bind(_listenPort);
        }
        catch (TunnelControlException e)
        {
            _tun.Dispose();
            _tun = null;
            throw new StartupException(e.Message, e);
        }
        FollowMtu();
        FollowRoutes();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping.Cancel();
        _linkChanges?.Dispose();
        _routeChanges?.Dispose();
        try
        {
            await _mtuWatch.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // A refresh that failed while stopping: nothing left to follow.
            logger.LogDebug("The MTU watch of {Interface} ended with: {Problem}", options.InterfaceName, e.Message);
        }
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await StopTunnelAsync().ConfigureAwait(false);
            _takenOverFrom?.Dispose();
            _takenOverFrom = null;
            _socket?.Dispose();
            _socket = null;
            _tun?.Dispose();
            _tun = null;
            await WarnIfNotReturnedAsync(_pool, "at shutdown").ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Runs <see cref="HandshakeRehearsal"/> on a pool thread while the daemon starts, so the first
    /// real handshake does not wait for its code to be compiled (26 ms for the first answer before,
    /// see there). A rehearsal that fails is logged and changes nothing else.
    /// </summary>
    private void RehearseHandshake(TunnelCrypto crypto) =>
        _ = Task.Run(() =>
        {
            long started = Stopwatch.GetTimestamp();
            try
            {
                bool completed = HandshakeRehearsal.Run(crypto.X25519, crypto.TransportAead, CryptoRandomSource.Instance);
                logger.Log(completed ? LogLevel.Debug : LogLevel.Warning,
                    "Handshake rehearsal in memory {Outcome} in {Milliseconds:F1} ms", completed ? "completed" : "did not complete",
                    Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
            catch (Exception e)
            {
                logger.LogWarning("Handshake rehearsal in memory failed after {Milliseconds:F1} ms: {Problem}",
                    Stopwatch.GetElapsedTime(started).TotalMilliseconds, e.Message);
            }
        });

    private LinuxTunDevice OpenTun(int mtu)
    {
        try
        {
            return new LinuxTunDevice(new TunDeviceOptions
            {
                Name = options.InterfaceName, Mtu = mtu, UdpCoalescing = options.UdpCoalescing,
            });
        }
        catch (TunDeviceException e)
        {
            throw new StartupException(e.Message, e);
        }
    }

    /// <summary>The engine device of the running tunnel (tests read its MTU).</summary>
    internal Device? CurrentDevice => _device;

    /// <summary>The pool the next tunnel is built on.</summary>
    internal PacketBufferPool Pool => _pool;

    public async Task SetPrivateKeyAsync(WireGuardKey? privateKey, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await SyncLinkStateAsync().ConfigureAwait(false);
            if (_linkDown || _socket is null)
            {
                // The link is down, or its port could not be bound at up (retried at each look): the
                // key is stored, and the tunnel starts on it at up or once the port is bound.
                UseKey(privateKey);
                return;
            }
            // The same key again starts the tunnel a failure left stopped.
            if (_privateKey == privateKey && (privateKey is null || _tunnel is not null))
            {
                return;
            }
            var previous = _privateKey;
            var running = _tunnel;
            UseKey(privateKey);
            try
            {
                // A new identity: the old sessions are void (whitepaper section 5.4 derives them from the static key).
                await RebuildAsync(newSocket: null).ConfigureAwait(false);
            }
            catch (Exception e) when (_tunnel is null || ReferenceEquals(_tunnel, running))
            {
                // Not running on the new key: the previous one stays (a tunnel on the new key that
                // failed after it started is the actors' failure, reported as such).
                UseKey(previous);
                await RollBackKeyAsync(previous, e).ConfigureAwait(false);
                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task SetListenPortAsync(ushort port, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await SyncLinkStateAsync().ConfigureAwait(false);
            if (_linkDown || (_socket is null && port == _listenPort))
            {
                // As the kernel's WireGuard (set_port): bound when the link comes up (a port in use is
                // reported then). The same port whose bind at up failed: retried at each look, and the
                // set (wg syncconf repeats the port) goes on with its peers.
                _listenPort = port;
                return;
            }
            if (_socket is not null && (port == _listenPort || port == _socket.LocalPort))
            {
                _listenPort = port;
                return;
            }
            // Bind first: a port in use is refused (EADDRINUSE) and the running tunnel stays as it is.
            var socket = Bind(port);
            if (_tunnel is not null && _socket is not null)
            {
                int oldPort = _socket.LocalPort;
                bool taken;
                try
                {
                    taken = _socket.TakeOver(socket);
                }
                catch (UdpSocketException e)
                {
                    socket.Dispose(); // the old socket stays in place, on its port
                    throw new TunnelControlException(UapiErrno.EINVAL, e.Message);
                }
                if (taken)
                {
                    _listenPort = port;
                    // The tunnel, its actors and every session stay (wireguard-go's UAPI rebinds and
                    // keeps them too). Beyond what its UAPI does, and like the keepalives its mobile
                    // embedders send after a rebind (SendKeepalivesToPeersWithCurrentKeypair), each
                    // peer with a session hears from the new port at once and moves its endpoint.
                    _tunnel.SendKeepalivesOnSessions();
                    logger.LogInformation("Tunnel {Generation} moved from UDP port {OldPort} to {Port}; sessions kept", _generation, oldPort, _socket.LocalPort);
                    return;
                }
            }
            ushort previousPort = _listenPort;
            _listenPort = port;
            try
            {
                await RebuildAsync(socket).ConfigureAwait(false);
            }
            catch when (!ReferenceEquals(_socket, socket))
            {
                _listenPort = previousPort; // the socket bound for it was closed
                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The desired private key and its public half.</summary>
    private void UseKey(WireGuardKey? privateKey)
    {
        _privateKey = privateKey;
        _publicKey = privateKey is { } key ? Engine.Crypto.Curve25519.PublicKeyOf(key) : null;
    }

    public void RequireFwmark(uint? fwmark)
    {
        lock (_requiredFwmarkGate)
        {
            _requiredFwmark = fwmark;
        }
    }

    public async Task SetFwmarkAsync(uint fwmark, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            uint? requiredFwmark;
            lock (_requiredFwmarkGate)
            {
                requiredFwmark = _requiredFwmark;
            }
            if (fwmark == 0 && requiredFwmark is { } required)
            {
                // `systemctl reload` (`wg syncconf` of `wg-quick strip`) of a file without FwMark
                // sends fwmark=0, as wg setconf does for every key a file leaves out. Cleared, the
                // tunnel's own datagrams would match "not fwmark T" and loop into the tunnel
                // (with wg-quick and wireguard-go, a reload breaks such a full tunnel so).
                logger.LogInformation("fwmark 0 requested: kept at {Fwmark:l}, which the default route's policy rules need", "0x" + required.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
                fwmark = required;
            }
            if (_socket is not null)
            {
                try
                {
                    _socket.SetMark(fwmark);
                }
                catch (UdpSocketException e)
                {
                    throw new TunnelControlException(e.Errno, e.Message);
                }
            }
            _fwmark = fwmark;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task AddOrUpdatePeerAsync(PeerConfig peer, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Remember(peer);
            if (_tunnel is not null)
            {
                await _tunnel.AddOrUpdatePeerAsync(peer, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Forget(publicKey);
            if (_tunnel is not null)
            {
                await _tunnel.RemovePeerAsync(publicKey, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task RemoveAllPeersAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _peers.Clear();
            _prefixOwners.Clear();
            _carried.Clear();
            if (_tunnel is not null)
            {
                await _tunnel.RemoveAllPeersAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task ApplyPeerChangesAsync(bool removeAll, IReadOnlyList<WireGuardKey> remove, IReadOnlyList<PeerConfig> upsert,
        IReadOnlySet<WireGuardKey> endpointNamed, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (removeAll)
            {
                _peers.Clear();
                _prefixOwners.Clear();
                _carried.Clear();
            }
            else
            {
                foreach (var key in remove)
                {
                    Forget(key);
                }
            }
            foreach (var peer in upsert)
            {
                // A change that does not name the endpoint keeps the one known here, as a running
                // tunnel keeps its learned one: the request was built from the configuration read before
                // it began (UapiSetApplier), and a key removal earlier in the same request (wg syncconf of a file whose
                // PrivateKey is commented out) has since carried the learned endpoint into _peers;
                // with no tunnel to keep it, the configured one ("(none)" on a Gateway) replaced it.
                Remember(!endpointNamed.Contains(peer.PublicKey) && _peers.TryGetValue(peer.PublicKey, out var known) && known.Endpoint != peer.Endpoint
                    ? peer with { Endpoint = known.Endpoint }
                    : peer);
            }
            if (_tunnel is not null)
            {
                // Waited for past the usual bound, as wireguard-go's set answers once every peer is applied.
                using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
                var changes = new ApplyPeerChanges(removeAll, remove, upsert, EndpointNamed: endpointNamed);
                var applied = await _tunnel.ApplyPeerChangesAsync(changes, waiting.Token, bound =>
                    logger.LogWarning("Tunnel {Generation} has not confirmed {Count} peer change(s) within {Seconds} s; waiting for them (the set answers, and a `wg show` after it, once they are applied)",
                        _generation, upsert.Count + remove.Count, bound.TotalSeconds)).ConfigureAwait(false);
                if (applied is null)
                {
                    throw new TunnelControlException(UapiErrno.EIO, $"tunnel {_generation} stopped before it confirmed the peer changes");
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Keeps the desired peer list in step with what the engine does: a prefix has one owner.</summary>
    private void Remember(PeerConfig peer)
    {
        var key = peer.PublicKey;
        if (_peers.TryGetValue(key, out var previous))
        {
            foreach (var prefix in previous.AllowedIps)
            {
                if (_prefixOwners.TryGetValue(prefix, out var owner) && owner.PublicKey == key)
                {
                    _prefixOwners.Remove(prefix);
                }
            }
        }
        foreach (var prefix in peer.AllowedIps)
        {
            if (_prefixOwners.TryGetValue(prefix, out var holder) && holder.PublicKey != key && _peers.TryGetValue(holder.PublicKey, out var other))
            {
                var kept = new List<IpPrefix>(other.AllowedIps.Count);
                foreach (var held in other.AllowedIps)
                {
                    if (held != prefix)
                    {
                        kept.Add(held);
                    }
                }
                var remaining = other with { AllowedIps = kept };
                _peers[other.PublicKey] = remaining;
                foreach (var held in kept)
                {
                    _prefixOwners[held] = remaining; // no entry keeps the replaced config alive
                }
            }
            _prefixOwners[prefix] = peer;
        }
        // The indexer keeps an existing peer's place in the order and appends a new one.
        _peers[key] = peer;
    }

    private void Forget(WireGuardKey key)
    {
        _carried.Remove(key);
        if (!_peers.Remove(key, out var previous))
        {
            return;
        }
        foreach (var prefix in previous.AllowedIps)
        {
            if (_prefixOwners.TryGetValue(prefix, out var owner) && owner.PublicKey == key)
            {
                _prefixOwners.Remove(prefix);
            }
        }
    }

    private LinuxUdpSocket Bind(ushort port)
    {
        try
        {
            var socket = new LinuxUdpSocket(new UdpBatchSocketOptions { ListenPort = port, UseGro = options.UdpGro, ReceiveBufferBytes = UdpReceiveQueue.Bytes() });
            if (_fwmark != 0)
            {
                try
                {
                    socket.SetMark(_fwmark);
                }
                catch (UdpSocketException e)
                {
                    socket.Dispose();
                    // Its own errno (EPERM, say), not the bind's mapping below.
                    throw new TunnelControlException(e.Errno, e.Message);
                }
            }
            return socket;
        }
        catch (UdpSocketException e)
        {
            throw new TunnelControlException(e.Errno == UapiErrno.EADDRINUSE ? UapiErrno.EADDRINUSE : UapiErrno.EINVAL, e.Message);
        }
    }
}
