using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Control;
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

    /// <summary>
    /// What the daemon dropped or refused for a peer reaches `firezone-tunnel show` (until
    /// 2026-11-29 only dotnet-counters had it: a review saw one side's tx_bytes exceed the other's
    /// rx_bytes by 170 KB under bursts with nothing in `show` to say why), and a rebuild (new key or
    /// port) adds to it rather than starting it from zero, as for the transfer.
    /// </summary>
    [Fact]
    public void A_peers_drops_are_in_its_status_and_carried_through_a_rebuild()
    {
        var running = Running(Live) with
        {
            QueueFullDrops = 227, DatagramsNotSent = 3, SourceNotAllowedRejected = 5, AuthenticationFailures = 1, ReplayedRejected = 2,
            MalformedRejected = 4, OutboundDropped = 6, OutboundInvalid = 1, Restarts = 1, RestartDrops = 9,
            NoKeypairRejected = 100, // datagrams for a session past its lifetime (late ones, after a rekey): not a fault, not shown
        };
        var expected = new PeerDropCounts(QueueFull: 227, NotSent: 3, SourceNotAllowed: 5, Refused: 7, OutboundRefused: 7, Restarts: 1, RestartDrops: 9);

        var live = ActorTunnelControl.MergePeers([Live], [running], new Dictionary<WireGuardKey, CarriedPeerState>()).Single();
        Assert.Equal(expected, live.Drops);

        var carried = new Dictionary<WireGuardKey, CarriedPeerState> { [Live.PublicKey] = CarriedPeerState.Of(live) };
        var rebuilt = ActorTunnelControl.MergePeers([Live], [running], carried).Single();
        Assert.Equal(expected + expected, rebuilt.Drops);
    }

    /// <summary>
    /// A peer supervision stopped says so in `firezone-tunnel show`, with the reason and how to start
    /// it again: it looked like a peer that never handshook, while its allowed IPs routed nowhere (the
    /// interface's "packets to addresses in no peer's allowed IPs" grew with its traffic).
    /// </summary>
    [Fact]
    public void A_peer_supervision_stopped_is_shown_as_stopped_with_the_reason()
    {
        var why = new Dictionary<WireGuardKey, string> { [Stopped.PublicKey] = "3 failures within 60 s; last: InvalidOperationException: boom\nsecond line" };
        var peers = ActorTunnelControl.MergePeers([Live, Stopped], [Running(Live)], new Dictionary<WireGuardKey, CarriedPeerState>(), why);
        Assert.Null(peers[0].Stopped);
        Assert.Equal(why[Stopped.PublicKey], peers[1].Stopped);

        var status = new DeviceStatus { Peers = peers };
        string extended = UapiGetFormatter.Format(status, extensions: true);
        Assert.Contains("fz_stopped=3 failures within 60 s; last: InvalidOperationException: boom second line\n", extended);
        Assert.DoesNotContain("fz_stopped", UapiGetFormatter.Format(status, extensions: false));
        var parsed = UapiGetParser.Parse(extended.TrimEnd('\n').Split('\n'));
        string shown = Firezone.Actors.Host.Cli.ShowFormatter.Format("wg0", parsed, DateTimeOffset.UtcNow);
        Assert.Contains($"  stopped: 3 failures within 60 s; last: InvalidOperationException: boom second line (`wg set wg0 peer {Stopped.PublicKey.ToBase64()}` starts it again)\n", shown);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(shown, "  stopped: "));
    }

    /// <summary>
    /// The reason is an exception's message, of any length: written whole, one of 64 KiB or more
    /// made its fz_stopped line longer than a UAPI line may be, and `firezone-tunnel show` of the
    /// whole interface failed ("line of 65536 bytes or more", EIO). It is cut to
    /// UapiGetFormatter.StoppedMaxChars characters; the other peers and lines read as before.
    /// </summary>
    [Fact]
    public async Task A_stopped_peers_reason_of_any_length_leaves_the_reply_readable()
    {
        string message = "first line\r\n" + new string('x', 100_000) + "=é";
        var why = new Dictionary<WireGuardKey, string> { [Stopped.PublicKey] = "its configuration was rejected: ArgumentException: " + message };
        var status = new DeviceStatus { Peers = ActorTunnelControl.MergePeers([Stopped, Live], [Running(Live)], new Dictionary<WireGuardKey, CarriedPeerState>(), why) };

        using var reply = new MemoryStream();
        await UapiGetFormatter.WriteAsync(status, extensions: true, reply, CancellationToken.None);
        reply.Position = 0;
        var reader = new UapiLineReader(reply);
        var lines = new List<string>();
        while (await reader.ReadLineAsync(CancellationToken.None) is { } line && !line.StartsWith("errno=", StringComparison.Ordinal))
        {
            lines.Add(line); // threw UapiException (EIO) at the fz_stopped line
        }
        var parsed = UapiGetParser.Parse(lines);

        Assert.Equal([Stopped.PublicKey, Live.PublicKey], parsed.Peers.Select(p => p.Config.PublicKey));
        string shown = parsed.Peers[0].Stopped!;
        Assert.StartsWith("its configuration was rejected: ArgumentException: first line xxx", shown);
        Assert.Equal(UapiGetFormatter.StoppedMaxChars, shown.Length);
        Assert.EndsWith("...", shown);
        Assert.Null(parsed.Peers[1].Stopped);
        Assert.Equal(2000UL, parsed.Peers[1].TxBytes);
        // A short one is kept whole, '=' and all.
        status = status with { Peers = [status.Peers[0] with { Stopped = "4 failures within 60 s; last: FormatException: a=b" }] };
        Assert.Contains("\nfz_stopped=4 failures within 60 s; last: FormatException: a=b\n", UapiGetFormatter.Format(status, extensions: true));
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
