using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Control;
using Org.BouncyCastle.Math.EC.Rfc7748;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A model of the tunnel's control surface for tests of the UAPI and service mode: it keeps the
/// configuration the way wireguard-go does (one owner per allowed-IP prefix, peers in creation
/// order) and records every call so tests can check what the host asked for.
/// </summary>
internal sealed class InMemoryTunnelControl : ITunnelControl
{
    private readonly object _gate = new();
    private readonly List<PeerStatus> _peers = [];
    private WireGuardKey? _privateKey;
    private ushort _listenPort;
    private uint _fwmark;

    public List<string> Calls { get; } = [];

    /// <summary>A port SetListenPort refuses with EADDRINUSE, to test error replies.</summary>
    public ushort? PortInUse { get; set; }

    /// <summary>SetFwmark refuses every mark with EPERM, as the socket does without CAP_NET_ADMIN.</summary>
    public bool FwmarkRefused { get; set; }

    public static WireGuardKey PublicKeyOf(WireGuardKey privateKey)
    {
        var secret = privateKey.ToArray();
        var result = new byte[32];
        X25519.ScalarMultBase(secret, 0, result, 0);
        return new WireGuardKey(result);
    }

    public Task<DeviceStatus> GetStatusAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(new DeviceStatus
            {
                PrivateKey = _privateKey,
                PublicKey = _privateKey is { } key ? PublicKeyOf(key) : null,
                ListenPort = _listenPort,
                Fwmark = _fwmark,
                Peers = _peers.ToArray(),
            });
        }
    }

    public Task SetPrivateKeyAsync(WireGuardKey? privateKey, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Calls.Add("SetPrivateKey");
            _privateKey = privateKey;
        }
        return Task.CompletedTask;
    }

    public Task SetListenPortAsync(ushort port, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (port != 0 && port == PortInUse)
            {
                throw new TunnelControlException(98, $"port {port} is in use");
            }
            Calls.Add($"SetListenPort {port}");
            _listenPort = port;
        }
        return Task.CompletedTask;
    }

    public Task SetFwmarkAsync(uint fwmark, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (FwmarkRefused)
            {
                throw new TunnelControlException(1, $"setting fwmark 0x{fwmark:x} on the UDP socket needs CAP_NET_ADMIN (run as root)");
            }
            Calls.Add($"SetFwmark {fwmark}");
            _fwmark = fwmark;
        }
        return Task.CompletedTask;
    }

    public Task AddOrUpdatePeerAsync(PeerConfig peer, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Calls.Add($"AddOrUpdatePeer {peer.PublicKey.ToBase64()}");
            for (int i = 0; i < _peers.Count; i++)
            {
                var other = _peers[i];
                if (other.Config.PublicKey == peer.PublicKey)
                {
                    continue;
                }
                var kept = other.Config.AllowedIps.Where(p => !peer.AllowedIps.Contains(p)).ToArray();
                if (kept.Length != other.Config.AllowedIps.Count)
                {
                    _peers[i] = other with { Config = other.Config with { AllowedIps = kept } };
                }
            }
            int index = _peers.FindIndex(p => p.Config.PublicKey == peer.PublicKey);
            if (index < 0)
            {
                _peers.Add(new PeerStatus { Config = peer, Endpoint = peer.Endpoint });
            }
            else
            {
                _peers[index] = _peers[index] with { Config = peer, Endpoint = peer.Endpoint };
            }
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// As the default, call by call, and as the engine and wireguard-go keep a roamed endpoint: an
    /// update moves a peer's live endpoint only when its configured endpoint changes or the request
    /// named it (<paramref name="endpointNamed"/>).
    /// </summary>
    public async Task ApplyPeerChangesAsync(bool removeAll, IReadOnlyList<WireGuardKey> remove, IReadOnlyList<PeerConfig> upsert,
        IReadOnlySet<WireGuardKey> endpointNamed, CancellationToken cancellationToken)
    {
        if (removeAll)
        {
            await RemoveAllPeersAsync(cancellationToken);
        }
        foreach (var key in removeAll ? [] : remove)
        {
            await RemovePeerAsync(key, cancellationToken);
        }
        foreach (var peer in upsert)
        {
            PeerStatus? before;
            lock (_gate)
            {
                before = _peers.Find(p => p.Config.PublicKey == peer.PublicKey);
            }
            await AddOrUpdatePeerAsync(peer, cancellationToken);
            if (before is not null && before.Config.Endpoint == peer.Endpoint && !endpointNamed.Contains(peer.PublicKey))
            {
                SetLiveState(peer.PublicKey, p => p with { Endpoint = before.Endpoint });
            }
        }
    }

    public Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Calls.Add($"RemovePeer {publicKey.ToBase64()}");
            _peers.RemoveAll(p => p.Config.PublicKey == publicKey);
        }
        return Task.CompletedTask;
    }

    public Task RemoveAllPeersAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Calls.Add("RemoveAllPeers");
            _peers.Clear();
        }
        return Task.CompletedTask;
    }

    /// <summary>Sets a peer's live counters, as traffic would.</summary>
    public void SetLiveState(WireGuardKey publicKey, Func<PeerStatus, PeerStatus> update)
    {
        lock (_gate)
        {
            int index = _peers.FindIndex(p => p.Config.PublicKey == publicKey);
            _peers[index] = update(_peers[index]);
        }
    }

    public IReadOnlyList<IpPrefix> AllowedIpsOf(WireGuardKey publicKey)
    {
        lock (_gate)
        {
            return _peers.First(p => p.Config.PublicKey == publicKey).Config.AllowedIps;
        }
    }
}
