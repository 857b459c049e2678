using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Tunnel;
using Firezone.Actors.Host.Uapi;
using ActorPeerStatus = Firezone.Actors.Actors.Peers.PeerStatus;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The status `wg show` and a save read: every configured peer, also one without a connection
/// (supervision stopped it past its failure limit). Left out, it vanished from `wg show`,
/// `wg showconf` and a save, and a partial `wg set` for it started from defaults and overwrote its
/// configuration (found by an actor-layer review, 2026-11-27).
/// </summary>
public sealed class PeerStatusMergeTests
{
    private static readonly PeerConfig Live = new()
    {
        PublicKey = TestKeys.New(), AllowedIps = [IpPrefix.Parse("10.0.0.2/32")], Endpoint = UdpEndpoint.FromIPv4([192, 0, 2, 2], 51820),
    };

    private static readonly PeerConfig Stopped = new()
    {
        PublicKey = TestKeys.New(), PresharedKey = TestKeys.New(), AllowedIps = [IpPrefix.Parse("10.0.0.3/32"), IpPrefix.Parse("fd00::3/128")],
        Endpoint = UdpEndpoint.FromIPv4([192, 0, 2, 3], 51820), PersistentKeepaliveSeconds = 25, EcnMode = EcnMode.Compatibility,
    };

    private static ActorPeerStatus Running(PeerConfig config) => new()
    {
        PublicKey = config.PublicKey, Config = config, Endpoint = UdpEndpoint.FromIPv4([198, 51, 100, 7], 40000), LastHandshakeUtc = DateTime.UtcNow,
        RxBytes = 1000, TxBytes = 2000, AllowedIps = config.AllowedIps, PersistentKeepaliveSeconds = config.PersistentKeepaliveSeconds,
        EcnMode = config.EcnMode, HasPresharedKey = config.PresharedKey is not null, TxPackets = 1, TxPacketBytes = 1, RxPackets = 1,
        RxPacketBytes = 1, DatagramsSentNotEct = 0, DatagramsSentEct0 = 3, DatagramsSentEct1 = 0, DatagramsSentCe = 0, CeDatagramsReceived = 0,
        CeMarksPropagated = 0, EcnDrops = 0, EcnUnexpected = 0, AuthenticationFailures = 0, ReplayedRejected = 0, NoKeypairRejected = 0,
        SourceNotAllowedRejected = 0, MalformedRejected = 0, HandshakesRejected = 0, OutboundDropped = 0, OutboundInvalid = 0, Restarts = 0,
    };

    [Fact]
    public void A_configured_peer_without_a_connection_is_listed_with_its_configuration()
    {
        var peers = ActorTunnelControl.MergePeers([Live, Stopped], [Running(Live)], new Dictionary<WireGuardKey, CarriedPeerState>());

        Assert.Equal([Live.PublicKey, Stopped.PublicKey], peers.Select(p => p.Config.PublicKey));
        Assert.Equal(UdpEndpoint.FromIPv4([198, 51, 100, 7], 40000), peers[0].Endpoint); // live: where it is now
        Assert.Equal(2000UL, peers[0].TxBytes);
        Assert.Equal(Stopped, peers[1].Config);
        Assert.Equal(Stopped.Endpoint, peers[1].Endpoint);
        Assert.Null(peers[1].LastHandshake);
    }

    [Fact]
    public async Task A_partial_wg_set_for_it_keeps_the_rest_of_its_configuration()
    {
        var control = new InMemoryTunnelControl();
        var peers = ActorTunnelControl.MergePeers([Live, Stopped], [Running(Live)], new Dictionary<WireGuardKey, CarriedPeerState>());
        foreach (var peer in peers)
        {
            await control.AddOrUpdatePeerAsync(peer.Config, CancellationToken.None);
        }

        // `wg set IF peer STOPPED persistent-keepalive 10`
        await UapiSetApplier.ApplyAsync(UapiSetParser.Parse([$"public_key={Stopped.PublicKey.ToHex()}", "persistent_keepalive_interval=10"]),
            control, CancellationToken.None);

        var after = (await control.GetStatusAsync(CancellationToken.None)).Peers.Single(p => p.Config.PublicKey == Stopped.PublicKey).Config;
        Assert.Equal(Stopped with { PersistentKeepaliveSeconds = 10 }, after with { AllowedIps = Stopped.AllowedIps });
        Assert.Equal(Stopped.AllowedIps, after.AllowedIps);
    }
}
