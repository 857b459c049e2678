using Akka.Actor;
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
/// </summary>
public sealed class ActorTunnelControl(
    DaemonOptions options,
    IServiceProvider services,
    ILogger<ActorTunnelControl> logger) : ITunnelControl, IHostedService
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly PacketBufferPool _pool = new();
    private readonly StopwatchClock _clock = new();
    private readonly List<PeerConfig> _peers = [];
    private ActorSystem? _system;
    private IActorRef? _failureListener;
    private LinuxTunDevice? _tun;
    private LinuxUdpSocket? _socket;
    private TunnelClient? _tunnel;
    private int _generation;
    private WireGuardKey? _privateKey;
    private WireGuardKey? _publicKey;
    private ushort _listenPort;
    private uint _fwmark;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _system = services.GetRequiredService<ActorSystem>();
        _failureListener = services.GetRequiredService<ActorRegistry>().Get<TunnelFailureListener>();
        // A name another daemon serves is refused before a TUN device exists, so nothing is left behind.
        UapiServer.EnsureAvailable(UapiSocketPath.For(options.InterfaceName, options.SocketDirectory));
        _tun = OpenTun();
        logger.LogInformation("TUN device {Interface} created (MTU {Mtu})", _tun.Name, _tun.Mtu);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await StopTunnelAsync().ConfigureAwait(false);
            _socket?.Dispose();
            _socket = null;
            _tun?.Dispose();
            _tun = null;
            if (_pool.Outstanding != 0)
            {
                logger.LogWarning("{Outstanding} packet buffers were not returned at shutdown", _pool.Outstanding);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private LinuxTunDevice OpenTun()
    {
        try
        {
            return new LinuxTunDevice(new TunDeviceOptions { Name = options.InterfaceName, Mtu = options.Config?.Interface.Mtu });
        }
        catch (TunDeviceException e)
        {
            throw new StartupException(e.Message, e);
        }
    }

    public async Task<Control.DeviceStatus> GetStatusAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_tunnel is null)
            {
                var idle = new List<Control.PeerStatus>(_peers.Count);
                foreach (var peer in _peers)
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
        var peers = new List<Control.PeerStatus>(status.Peers.Count);
        foreach (var configured in _peers)
        {
            ActorPeerStatus? live = null;
            foreach (var candidate in status.Peers)
            {
                if (candidate.PublicKey == configured.PublicKey)
                {
                    live = candidate;
                    break;
                }
            }
            if (live is null)
            {
                continue;
            }
            peers.Add(new Control.PeerStatus
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
            });
        }
        return new Control.DeviceStatus
        {
            PrivateKey = _privateKey,
            PublicKey = status.PublicKey,
            ListenPort = (ushort)status.ListenPort,
            Fwmark = _fwmark,
            Peers = peers,
        };
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
            _listenPort = port;
            await RebuildAsync(socket).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task SetFwmarkAsync(uint fwmark, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_socket is not null)
            {
                int errno = LinuxDescriptors.SetMark(_socket.Handle, fwmark);
                if (errno != 0)
                {
                    throw new TunnelControlException(errno, $"cannot set fwmark (errno {errno})");
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
            _peers.RemoveAll(p => p.PublicKey == publicKey);
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

    /// <summary>Keeps the desired peer list in step with what the engine does: a prefix has one owner.</summary>
    private void Remember(PeerConfig peer)
    {
        for (int i = 0; i < _peers.Count; i++)
        {
            var other = _peers[i];
            if (other.PublicKey == peer.PublicKey)
            {
                continue;
            }
            var kept = new List<IpPrefix>(other.AllowedIps.Count);
            foreach (var prefix in other.AllowedIps)
            {
                if (!peer.AllowedIps.Contains(prefix))
                {
                    kept.Add(prefix);
                }
            }
            if (kept.Count != other.AllowedIps.Count)
            {
                _peers[i] = other with { AllowedIps = kept };
            }
        }
        int index = _peers.FindIndex(p => p.PublicKey == peer.PublicKey);
        if (index < 0)
        {
            _peers.Add(peer);
        }
        else
        {
            _peers[index] = peer;
        }
    }

    private LinuxUdpSocket Bind(ushort port)
    {
        try
        {
            var socket = new LinuxUdpSocket(new UdpBatchSocketOptions { ListenPort = port });
            if (_fwmark != 0 && LinuxDescriptors.SetMark(socket.Handle, _fwmark) is int errno and not 0)
            {
                socket.Dispose();
                throw new TunnelControlException(errno, $"cannot set fwmark (errno {errno})");
            }
            return socket;
        }
        catch (UdpSocketException e)
        {
            throw new TunnelControlException(e.Errno == UapiErrno.EADDRINUSE ? UapiErrno.EADDRINUSE : UapiErrno.EINVAL, e.Message);
        }
    }

    /// <summary>Stops the running tunnel (if any) and starts one with the current key, socket and peers.</summary>
    private async Task RebuildAsync(LinuxUdpSocket? newSocket)
    {
        bool wasRunning = _tunnel is not null;
        await StopTunnelAsync().ConfigureAwait(false);
        if (wasRunning)
        {
            // The stopped readers left the TUN's and socket's wake events signalled for good:
            // reopen both. TUNSETPERSIST keeps the interface (and its addresses and routes) meanwhile.
            LinuxDescriptors.SetPersistent(_tun!.Handle, true);
            _tun.Dispose();
            _tun = OpenTun();
            LinuxDescriptors.SetPersistent(_tun.Handle, false);
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
        var device = new Device(privateKey, _pool, CryptoRandomSource.Instance, _clock.WallClockAtZero);
        _publicKey = device.PublicKey;
        var settings = TunnelSettings.ForEngine(device, _tun!, _socket, _clock, _failureListener);
        _tunnel = new TunnelClient(
            Tunnels.Start(_system!, settings, "tunnel-" + (++_generation).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            AskTimeout);
        foreach (var peer in _peers)
        {
            await _tunnel.AddOrUpdatePeerAsync(peer).ConfigureAwait(false);
        }
        logger.LogInformation("Tunnel {Generation} running on UDP port {Port} with {PeerCount} peer(s)", _generation, _socket.LocalPort, _peers.Count);
    }

    private async Task StopTunnelAsync()
    {
        if (_tunnel is { } tunnel)
        {
            _tunnel = null;
            try
            {
                await tunnel.Tunnel.GracefulStop(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TaskCanceledException or AskTimeoutException)
            {
                logger.LogWarning("The tunnel did not stop within 2 s");
            }
        }
    }
}
