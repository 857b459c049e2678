using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Uapi;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ActorDeviceStatus = Firezone.Actors.Actors.Peers.DeviceStatus;
using ActorPeerStatus = Firezone.Actors.Actors.Peers.PeerStatus;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>The device status for the UAPI and show: the running tunnel's view merged with the configured peers and the figures carried through rebuilds.</summary>
public sealed partial class ActorTunnelControl
{
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
            // No tunnel runs without a private key: each peer keeps the figures it had when the key
            // was removed (carried), as wireguard-go reports them then.
            if (_tunnel is null || services.GetService<Daemon.DaemonExit>() is { Removal: not null } or { Failure: not null })
            {
                var idle = MergePeers(_peers.Values, [], _carried);
                return new Control.DeviceStatus
                {
                    PrivateKey = _privateKey,
                    PublicKey = _publicKey,
                    ListenPort = (ushort)(_socket?.LocalPort ?? _listenPort), // closed while the link is down: the port it binds at up
                    Fwmark = _fwmark,
                    Peers = idle,
                    BuffersOutstanding = _pool.Outstanding,
                };
            }
            // Waited for past the usual bound, as wireguard-go's get answers however long it takes.
            using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
            var status = await StatusOfAsync(_tunnel, logger, _generation, "the request that reads it, a `wg show`, `wg showconf` or a save, answers once it does", waiting.Token)
                .ConfigureAwait(false);
            return Map(status);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// What is configured, without a round trip through the tunnel: the peers as the last request
    /// left them (a set's changes are applied, or refused, before it answers).
    /// </summary>
    public async Task<Control.DeviceConfiguration> GetConfigurationAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return new Control.DeviceConfiguration
            {
                PrivateKey = _privateKey,
                PublicKey = _publicKey,
                Fwmark = _fwmark,
                Peers = [.. _peers.Values],
            };
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// The running tunnel's (<paramref name="generation"/>) status, however long it takes while it
    /// runs: past the Ask's usual bound (thousands of peers on a busy machine, a tunnel still
    /// applying a large set) the log says so once at Warning, ending with <paramref name="waiting"/>
    /// (who waits), and the wait goes on until the tunnel answers, stops
    /// (<see cref="TunnelControlException"/>, EIO) or <paramref name="cancellationToken"/> ends it
    /// (the request's, the daemon's stop). Ended at the bound (as before), `wg show` of 10,000 peers
    /// on a daemon slowed to 1 ms of every second answered EIO ("Timeout after 00:00:05") where
    /// wireguard-go answers.
    /// </summary>
    internal static async Task<ActorDeviceStatus> StatusOfAsync(TunnelClient tunnel, ILogger logger, int generation, string waiting, CancellationToken cancellationToken)
    {
        var status = await tunnel.GetDeviceStatusAsync(cancellationToken, bound =>
            logger.LogWarning("Tunnel {Generation} has not reported its status within {Seconds} s; waiting for it ({Waiting:l})",
                generation, bound.TotalSeconds, waiting)).ConfigureAwait(false);
        return status ?? throw new TunnelControlException(UapiErrno.EIO, $"tunnel {generation} stopped before it reported its status");
    }

    private Control.DeviceStatus Map(ActorDeviceStatus status)
    {
        var peers = MergePeers(_peers.Values, status.Peers, _carried, status.Stopped);
        return new Control.DeviceStatus
        {
            PrivateKey = _privateKey,
            PublicKey = status.PublicKey,
            ListenPort = (ushort)status.ListenPort,
            Fwmark = _fwmark,
            Peers = peers,
            BuffersOutstanding = _pool.Outstanding,
            Drops = status.Drops,
        };
    }

    /// <summary>
    /// Every configured peer, in configuration order, with its live state where its connection has
    /// one. A configured peer without a connection (supervision stopped it past its failure limit)
    /// is listed with its configuration, as wireguard-go lists every configured peer: left out, it
    /// vanished from `wg show`, `wg showconf` and a save, and a partial `wg set` for it started from
    /// defaults (no allowed IPs, endpoint or preshared key) and overwrote its configuration. Now
    /// such a `wg set` re-creates it whole. <paramref name="stopped"/>: why supervision stopped such a
    /// peer, for `firezone-tunnel show` (it looked like a peer that never handshook).
    /// </summary>
    internal static List<Control.PeerStatus> MergePeers(IEnumerable<PeerConfig> configuredPeers, IReadOnlyList<ActorPeerStatus> livePeers,
        IReadOnlyDictionary<WireGuardKey, CarriedPeerState> carriedState, IReadOnlyDictionary<WireGuardKey, string>? stopped = null)
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
                peer = new Control.PeerStatus
                {
                    Config = configured, Endpoint = configured.Endpoint, Stopped = stopped?.GetValueOrDefault(configured.PublicKey),
                };
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
                    Drops = new PeerDropCounts(
                        QueueFull: (ulong)live.QueueFullDrops,
                        NotSent: (ulong)live.DatagramsNotSent,
                        SourceNotAllowed: (ulong)live.SourceNotAllowedRejected,
                        Refused: (ulong)(live.AuthenticationFailures + live.ReplayedRejected + live.MalformedRejected),
                        OutboundRefused: (ulong)(live.OutboundDropped + live.OutboundInvalid),
                        Restarts: (ulong)live.Restarts,
                        RestartDrops: (ulong)live.RestartDrops),
                };
            }
            peers.Add(carriedState.TryGetValue(configured.PublicKey, out var carried) ? carried.AddTo(peer) : peer);
        }
        return peers;
    }
}
