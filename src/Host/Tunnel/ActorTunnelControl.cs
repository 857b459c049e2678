using Akka.Actor;
using Akka.Hosting;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Time;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Daemon;
using Firezone.Actors.Host.Uapi;
using Firezone.Actors.Native;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ActorDeviceStatus = Firezone.Actors.Actors.Peers.DeviceStatus;
using ActorPeerStatus = Firezone.Actors.Actors.Peers.PeerStatus;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// <see cref="ITunnelControl"/> over the actor topology. It owns the TUN device, the UDP socket and
/// the engine <see cref="Device"/>, and keeps the desired configuration (private key, port, fwmark,
/// peers) so that it can rebuild the tunnel: the engine device is created with its private key and
/// the socket with its port, so changing either (wg-quick sets both after the daemon has started)
/// stops the TunnelActor and starts a new one with the same peers. The TUN interface is kept across
/// a rebuild (TUNSETPERSIST while its descriptor is reopened), so addresses and routes stay.
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
public sealed class ActorTunnelControl(
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
    private readonly StopwatchClock _clock = new();
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
    private int _generation;
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
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping.Cancel();
        _linkChanges?.Dispose();
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

    /// <param name="mtu">Set on the interface; null: leave it (a reopened, persistent interface).</param>
    private LinuxTunDevice OpenTun(int? mtu)
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

    /// <summary>
    /// Follows the TUN device's MTU (wg-quick sets it after the daemon started; an administrator may
    /// change it): every link change the kernel announces re-reads it (<see cref="LinkChangeSignal"/>,
    /// as wireguard-go does). Nothing runs while nothing changes; polling once a second only when the
    /// announcements are unavailable.
    /// </summary>
    private void FollowMtu()
    {
        var linkChanges = new LinkChangeSignal(options.InterfaceName, logger, MtuPollInterval);
        _linkChanges = linkChanges;
        _mtuWatch = Task.Run(() => WatchMtuAsync(linkChanges));
    }

    private async Task WatchMtuAsync(LinkChangeSignal linkChanges)
    {
        try
        {
            while (true)
            {
                await linkChanges.WaitAsync(_stopping.Token).ConfigureAwait(false);
                // Waits for a reconfiguration to finish rather than skipping: a change is announced once.
                await _gate.WaitAsync(_stopping.Token).ConfigureAwait(false);
                try
                {
                    await RefreshMtuAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (!_stopping.IsCancellationRequested)
                {
                    // RefreshMtuAsync handles a device that is going away (the TUN reader reports it);
                    // what reaches here is a rebuild onto larger buffers that failed: no tunnel runs.
                    logger.LogError("Following the MTU of {Interface} failed: {Problem}; the tunnel may be down",
                        options.InterfaceName, e.Message);
                }
                finally
                {
                    _gate.Release();
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    /// <summary>Re-reads the kernel's MTU into the engine; rebuilds on bigger buffers when packets would not fit. Under the gate.</summary>
    private async Task RefreshMtuAsync()
    {
        if (_tun is null)
        {
            return;
        }
        int mtu;
        try
        {
            mtu = NetworkInterfaceControl.GetMtu(_tun.Name);
        }
        catch (TunDeviceException e) when (e.Errno == Tmds.Linux.LibC.ENODEV && _tunnel is null)
        {
            // No tunnel runs yet (no private key), so no TUN reader reports the loss: deleting the
            // interface (wg-quick down) stops the daemon here, as a removal (exit 0, as wireguard-go).
            string reason = $"TUN device {_tun.Name} is gone (deleted, or its network namespace removed)";
            logger.LogInformation("{Reason}; stopping", reason);
            services.GetService<Daemon.DaemonExit>()?.Removed(reason);
            services.GetService<IHostApplicationLifetime>()?.StopApplication();
            return;
        }
        catch (TunDeviceException)
        {
            return; // the device is going away; the TUN reader reports that
        }
        if (PacketBufferSizing.BufferSizeFor(mtu) > _pool.BufferSize)
        {
            logger.LogWarning(
                "MTU {Mtu} of {Interface} exceeds the {BufferSize}-byte packet buffers (MTU up to {MaxMtu}); rebuilding the tunnel on {NewSize}-byte buffers",
                mtu, _tun.Name, _pool.BufferSize, PacketBufferSizing.MaxMtuFor(_pool.BufferSize), PacketBufferSizing.BufferSizeFor(mtu));
            await RebuildAsync(newSocket: null, newPoolMtu: mtu, keepSessions: true).ConfigureAwait(false);
            return;
        }
        if (_device is { } device && device.Mtu != mtu)
        {
            logger.LogInformation("MTU of {Interface} is now {Mtu}", _tun.Name, mtu);
            device.Mtu = mtu;
        }
    }

    public async Task<Control.DeviceStatus> GetStatusAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // wg(8) and wg-quick read status after changing the link: a get sees the current MTU.
            await RefreshMtuAsync().ConfigureAwait(false);
            // A tunnel that failed (TunnelFailed: its TUN device deleted, its socket lost) has
            // stopped its actors: what is configured is all there is to report, at once (an Ask
            // would wait for its time bound in the dead letters). SaveConfig reads it on that stop.
            if (_tunnel is null || services.GetService<Daemon.DaemonExit>() is { Removal: not null } or { Failure: not null })
            {
                var idle = new List<Control.PeerStatus>(_peers.Count);
                foreach (var peer in _peers.Values)
                {
                    idle.Add(new Control.PeerStatus { Config = peer, Endpoint = peer.Endpoint });
                }
                return new Control.DeviceStatus
                {
                    PrivateKey = _privateKey,
                    PublicKey = _publicKey,
                    ListenPort = (ushort)(_socket?.LocalPort ?? 0),
                    Fwmark = _fwmark,
                    Peers = idle,
                    BuffersOutstanding = _pool.Outstanding,
                };
            }
            var status = await _tunnel.GetDeviceStatusAsync(cancellationToken).ConfigureAwait(false);
            return Map(status);
        }
        finally
        {
            _gate.Release();
        }
    }

    private Control.DeviceStatus Map(ActorDeviceStatus status)
    {
        var peers = MergePeers(_peers.Values, status.Peers, _carried);
        return new Control.DeviceStatus
        {
            PrivateKey = _privateKey,
            PublicKey = status.PublicKey,
            ListenPort = (ushort)status.ListenPort,
            Fwmark = _fwmark,
            Peers = peers,
            BuffersOutstanding = _pool.Outstanding,
        };
    }

    /// <summary>
    /// Every configured peer, in configuration order, with its live state where its connection has
    /// one. A configured peer without a connection (supervision stopped it past its failure limit)
    /// is listed with its configuration, as wireguard-go lists every configured peer: left out, it
    /// vanished from `wg show`, `wg showconf` and a save, and a partial `wg set` for it started from
    /// defaults (no allowed IPs, endpoint or preshared key) and overwrote its configuration. Now
    /// such a `wg set` re-creates it whole.
    /// </summary>
    internal static List<Control.PeerStatus> MergePeers(IEnumerable<PeerConfig> configuredPeers, IReadOnlyList<ActorPeerStatus> livePeers,
        IReadOnlyDictionary<WireGuardKey, CarriedPeerState> carriedState)
    {
        var peers = new List<Control.PeerStatus>(livePeers.Count);
        var byKey = new Dictionary<WireGuardKey, ActorPeerStatus>(livePeers.Count);
        foreach (var candidate in livePeers)
        {
            byKey[candidate.PublicKey] = candidate;
        }
        foreach (var configured in configuredPeers)
        {
            Control.PeerStatus peer;
            if (!byKey.TryGetValue(configured.PublicKey, out var live))
            {
                peer = new Control.PeerStatus { Config = configured, Endpoint = configured.Endpoint };
            }
            else
            {
                peer = new Control.PeerStatus
                {
                    Config = configured with { AllowedIps = live.AllowedIps },
                    Endpoint = live.Endpoint,
                    LastHandshake = live.LastHandshakeUtc is { } utc ? new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc)) : null,
                    RxBytes = (ulong)live.RxBytes,
                    TxBytes = (ulong)live.TxBytes,
                    Ecn = new EcnCounters(
                        EctSent: (ulong)(live.DatagramsSentEct0 + live.DatagramsSentEct1 + live.DatagramsSentCe),
                        CeReceived: (ulong)live.CeDatagramsReceived,
                        CePropagated: (ulong)live.CeMarksPropagated,
                        EcnDrops: (ulong)live.EcnDrops,
                        AlarmEvents: (ulong)live.EcnUnexpected),
                };
            }
            peers.Add(carriedState.TryGetValue(configured.PublicKey, out var carried) ? carried.AddTo(peer) : peer);
        }
        return peers;
    }

    public async Task SetPrivateKeyAsync(WireGuardKey? privateKey, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_privateKey == privateKey)
            {
                return;
            }
            _privateKey = privateKey;
            _publicKey = null;
            // A new identity: the old sessions are void (whitepaper section 5.4 derives them from the static key).
            await RebuildAsync(newSocket: null).ConfigureAwait(false);
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
            _listenPort = port;
            await RebuildAsync(socket).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
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
                Remember(peer);
            }
            if (_tunnel is not null)
            {
                await _tunnel.ApplyPeerChangesAsync(new ApplyPeerChanges(removeAll, remove, upsert, EndpointNamed: endpointNamed), cancellationToken).ConfigureAwait(false);
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
            var socket = new LinuxUdpSocket(new UdpBatchSocketOptions { ListenPort = port, UseGro = options.UdpGro });
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

    /// <summary>
    /// Stops the running tunnel (if any) and starts one with the current key, socket and peers.
    /// <paramref name="keepSessions"/> (the same private key and port, only bigger buffers): the
    /// peers' sessions go on in the new tunnel (<see cref="PeerHandovers"/>), as wireguard-go keeps
    /// them through an MTU change; otherwise the peers that had one handshake at its start.
    /// </summary>
    private async Task RebuildAsync(LinuxUdpSocket? newSocket, int? newPoolMtu = null, bool keepSessions = false)
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
        if (newPoolMtu is int poolMtu)
        {
            // The old pool is dropped whole; the stopped tunnel's buffers come back to it (PostStop,
            // dead letters), checked off the rebuild's path so the new tunnel does not wait for it.
            _ = WarnIfNotReturnedAsync(_pool, "before the pool was replaced");
            _pool = PacketBufferSizing.PoolFor(poolMtu);
        }
        if (wasRunning && stopped)
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
        else if (wasRunning)
        {
            // The old tunnel did not stop in time: a reader of it may still wait on the TUN device
            // or the socket. Reopen both; TUNSETPERSIST keeps the interface (and its addresses and
            // routes) meanwhile.
            _tun!.SetPersistent(true);
            _tun.Dispose();
            _tun = OpenTun(mtu: null); // keeps the MTU the interface has now
            _tun.SetPersistent(false);
            if (newSocket is null && _socket is not null)
            {
                ushort port = (ushort)_socket.LocalPort;
                _socket.Dispose();
                _socket = null;
                newSocket = Bind(port);
            }
        }
        if (newSocket is not null)
        {
            _socket?.Dispose();
            _socket = newSocket;
        }
        if (_privateKey is not { } privateKey)
        {
            return;
        }
        _socket ??= Bind(_listenPort);
        // The live MTU, not the one at open: wg-quick may have changed it since.
        int mtu = NetworkInterfaceControl.GetMtu(_tun!.Name);
        if (PacketBufferSizing.BufferSizeFor(mtu) > _pool.BufferSize)
        {
            _pool = PacketBufferSizing.PoolFor(mtu); // no tunnel runs now, so no buffer is out
        }
        // The live wall clock for handshake timestamps: a clock NTP corrects after start is picked up (whitepaper 5.4.2).
        var device = new Device(privateKey, _pool, CryptoRandomSource.Instance, _clock.WallClockAtZero, static () => DateTime.UtcNow,
            _crypto!.X25519, _crypto.TransportAead) { Mtu = mtu };
        _device = device;
        _publicKey = device.PublicKey;
        _handovers = new PeerHandovers();
        var settings = TunnelSettings.ForEngine(device, _tun!, _socket, _clock, _failureListener) with
        {
            ReplyPollMax = options.ReplyPollMax,
            ReadModeration = options.ReadModeration,
            HandOverTo = _handovers,
            TakeOverFrom = _takenOverFrom,
            StartReadingPaused = wasRunning,
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
                await _tunnel.ApplyPeerChangesAsync(new ApplyPeerChanges(false, [], peers, handshakeAtStart)).ConfigureAwait(false);
            }
        }
        finally
        {
            // A rebuilt tunnel reads only now (StartReadingPaused): what waited in the queues finds its peers.
            _tunnel.Tunnel.Tell(StartReading.Instance);
        }
        // The tick as the running actor system has it, so the log shows what took effect.
        var timerTick = _system!.Settings.Config.GetTimeSpan("akka.scheduler.tick-duration", null, allowInfinite: false);
        logger.LogInformation("Tunnel {Generation} running on UDP port {Port} (receive merging {UdpGro}, send merging {UdpGso}) with {PeerCount} peer(s), reply polling up to {ReplyPollMicroseconds} us, read moderation {ReadModerationMicroseconds} us, timer tick {TimerTickMilliseconds} ms ({Scheduler:l}), X25519 from {X25519:l}, ChaCha20-Poly1305 from {TransportAead:l}",
            _generation, _socket.LocalPort, _socket.GroEnabled ? "on" : "off", _socket.GsoEnabled ? "on" : "off", _peers.Count, (int)options.ReplyPollMax.TotalMicroseconds,
            (int)options.ReadModeration.TotalMicroseconds, (int)timerTick.TotalMilliseconds,
            _system.Scheduler.GetType().Name, _crypto.X25519.Name, _crypto.TransportAead.Name);
    }

    /// <summary>
    /// Before a rebuild: keeps each peer's figures (<see cref="CarriedPeerState"/>) and the endpoint it
    /// last used (roaming may have changed it from the configured one, and the rebuilt tunnel must
    /// reach the peer there). Returns the peers that had a session within REJECT_AFTER_TIME and have
    /// an endpoint: they handshake as soon as the rebuilt tunnel starts, so the other side, which still
    /// sends on the old session (to the old port, after a port change), moves to the new one within a
    /// round trip instead of at its next rekey (wireguard-go keeps the session itself; a rebuilt
    /// engine device cannot). Null when no tunnel runs.
    /// </summary>
    private async Task<IReadOnlySet<WireGuardKey>?> CarryPeerStateAsync()
    {
        if (_tunnel is null)
        {
            return null;
        }
        Control.DeviceStatus status;
        try
        {
            status = Map(await _tunnel.GetDeviceStatusAsync(CancellationToken.None).ConfigureAwait(false));
        }
        catch (Exception e) when (e is TaskCanceledException or AskTimeoutException or TimeoutException)
        {
            logger.LogWarning("The tunnel did not report its peers before the rebuild: their counters and learned endpoints start over ({Problem})", e.Message);
            return null;
        }
        var handshake = new HashSet<WireGuardKey>();
        var recent = DateTimeOffset.UtcNow - ProtocolConstants.RejectAfterTime;
        foreach (var peer in status.Peers)
        {
            var key = peer.Config.PublicKey;
            if (peer.RxBytes != 0 || peer.TxBytes != 0 || peer.LastHandshake is not null || peer.Ecn != default)
            {
                _carried[key] = CarriedPeerState.Of(peer);
            }
            if (!peer.Endpoint.IsNone && _peers.TryGetValue(key, out var config) && config.Endpoint != peer.Endpoint)
            {
                Remember(config with { Endpoint = peer.Endpoint });
            }
            if (peer.LastHandshake > recent && !peer.Endpoint.IsNone)
            {
                handshake.Add(key);
            }
        }
        return handshake;
    }

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
            await tunnel.Tunnel.Ask<ReadingStopped>(StopReading.Instance, TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TaskCanceledException or AskTimeoutException)
        {
            logger.LogWarning("The tunnel's readers did not stop within 2 s before the rebuild");
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

    /// <summary>Stops the running tunnel, if any; false when it did not stop in time (its threads may still run).</summary>
    private async Task<bool> StopTunnelAsync()
    {
        var device = _device;
        _device = null;
        if (_tunnel is { } tunnel)
        {
            _tunnel = null;
            try
            {
                await tunnel.Tunnel.GracefulStop(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TaskCanceledException or AskTimeoutException)
            {
                // A thread of it may still handshake: its key is left to the finalizer.
                logger.LogWarning("The tunnel did not stop within 2 s");
                return false;
            }
        }
        device?.Dispose(); // its actors and reader threads have stopped: forget the old static key
        return true;
    }
}
