using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Engine.Routing;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>The control messages the host maps the wg UAPI onto.</summary>
public sealed class ControlTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private (TunnelNode A, TunnelNode B) StartConnectedPair()
    {
        var (a, b) = base.StartPair();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        return (a, b);
    }

    [Fact]
    public void Updating_a_peer_keeps_its_session_and_moves_its_routes()
    {
        var (a, b) = StartConnectedPair();
        var updated = a.PeerConfigFor(b) with { AllowedIps = [IpPrefix.Parse("10.0.0.2/32"), IpPrefix.Parse("10.7.0.0/16")], PersistentKeepaliveSeconds = 0 };
        Assert.False(Control<PeerConfigured>(a, new AddOrUpdatePeer(updated)).Created);
        a.Tun.Inject(Packets.Ipv4(a.Address, "10.7.3.4", id: 2));
        AwaitWritten(b, 2);
        var status = PeerStatusOf(a, b);
        Assert.Equal(["10.0.0.2/32", "10.7.0.0/16"], status.AllowedIps.Select(p => p.ToString()).Order());
        Assert.Equal(0, status.Restarts);
        // Same session: still one handshake.
        Assert.Equal(1, Network.Count(d => d.From == a.Endpoint && d.Type == Engine.WireGuard.MessageType.Initiation));
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void Removing_a_peer_removes_its_routes_and_status()
    {
        var (a, b) = StartConnectedPair();
        Assert.True(Control<PeerRemoved>(a, new RemovePeer(b.PublicKey)).Existed);
        Assert.False(Control<PeerRemoved>(a, new RemovePeer(b.PublicKey)).Existed);
        Assert.Empty(Control<DeviceStatus>(a, GetDeviceStatus.Instance).Peers);
        Assert.IsType<PeerNotFound>(Control<object>(a, new GetPeerStatus(b.PublicKey)));
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2));
        AwaitCondition(() => Control<DeviceStatus>(a, GetDeviceStatus.Instance).Drops.TunPacketsNoRoute == 1, Wait);
        Assert.Equal(1, b.Tun.WrittenCount);
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void A_peer_removed_and_added_again_at_once_keeps_its_routes_and_handshakes_afresh()
    {
        var (a, b) = StartConnectedPair();
        AdvanceTime(TimeSpan.FromSeconds(1));
        Control<PeerRemoved>(a, new RemovePeer(b.PublicKey));
        Assert.True(Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b))).Created);
        // The new peer has no session; its first packet starts the handshake.
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2));
        AwaitWritten(b, 2);
        Assert.Equal(2, InitiationsFrom(a));
        StopAndAssertNoLeaks(a, b);
    }

    private int InitiationsFrom(TunnelNode node, TunnelNode? to = null) =>
        Network.Count(d => d.From == node.Endpoint && (to is null || d.To == to.Endpoint) && d.Type == Engine.WireGuard.MessageType.Initiation);

    [Fact]
    public void A_newly_configured_peer_waits_for_traffic_before_its_first_handshake_as_in_wireguard_go()
    {
        var (a, b) = StartPair();
        PeerStatusOf(a, b); // a round trip through the new PeerConnection: it has started
        AdvanceTime(TimeSpan.FromSeconds(6)); // past Rekey-Timeout: a retransmission would show too
        PeerStatusOf(a, b);
        Assert.Equal(0, InitiationsFrom(a));

        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        Assert.Equal(1, InitiationsFrom(a));
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void A_newly_configured_peer_with_persistent_keepalive_handshakes_at_once()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b, keepalive: 25)));
        AwaitCondition(() => InitiationsFrom(a) == 1, Wait);
        AwaitCondition(() => PeerStatusOf(a, b).LastHandshakeUtc is not null, Wait);
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void Only_the_peers_named_to_handshake_at_start_handshake_before_traffic()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        var c = StartNode("c", 3);
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(c, new AddOrUpdatePeer(c.PeerConfigFor(a, withEndpoint: false)));
        // As a rebuilt tunnel starts its peers: b had a session in the tunnel this one replaces, c had none.
        var applied = Control<PeerChangesApplied>(a, new ApplyPeerChanges(false, [], [a.PeerConfigFor(b), a.PeerConfigFor(c)],
            new HashSet<Engine.WireGuard.WireGuardKey> { b.PublicKey }));
        Assert.Equal(2, applied.Created);
        AwaitCondition(() => PeerStatusOf(a, b).LastHandshakeUtc is not null, Wait);
        PeerStatusOf(a, c);
        Assert.Equal(1, InitiationsFrom(a, b));
        Assert.Equal(0, InitiationsFrom(a, c));
        // An update of a running peer is not a start: no handshake.
        Control<PeerChangesApplied>(a, new ApplyPeerChanges(false, [], [a.PeerConfigFor(c)], new HashSet<Engine.WireGuard.WireGuardKey> { c.PublicKey }));
        PeerStatusOf(a, c);
        Assert.Equal(0, InitiationsFrom(a, c));
        StopAndAssertNoLeaks(a, b, c);
    }

    [Fact]
    public void A_peer_resent_with_the_settings_it_has_is_unchanged_and_not_logged_at_information()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        var config = a.PeerConfigFor(b, keepalive: 25);
        Assert.Equal(new PeerChangesApplied(1, 0, 0), Control<PeerChangesApplied>(a, new ApplyPeerChanges(false, [], [config])));
        // The same settings in new objects, as a `wg syncconf` of an unchanged file sends them.
        var again = config with { AllowedIps = config.AllowedIps.ToList() };
        EventFilter.Info(contains: "peers changed").Expect(0, () =>
            Assert.Equal(new PeerChangesApplied(0, 0, 0, 1), Control<PeerChangesApplied>(a, new ApplyPeerChanges(false, [], [again]))));
        EventFilter.Info(contains: "peers changed: 0 added, 1 updated, 0 removed, 0 unchanged; 1 configured").ExpectOne(Wait, () =>
            Assert.Equal(new PeerChangesApplied(0, 1, 0, 0),
                Control<PeerChangesApplied>(a, new ApplyPeerChanges(false, [], [again with { PersistentKeepaliveSeconds = 0 }]))));
        StopAndAssertNoLeaks(a, b);
    }

    /// <summary>
    /// A tunnel rebuilt for a new private key, port or buffer size gets the old one's peers as one
    /// transaction: its log says they were carried over, not "N added" (read with jq, that looked
    /// like peers someone had just configured).
    /// </summary>
    [Fact]
    public void Peers_carried_over_to_a_rebuilt_tunnel_are_logged_as_carried_over_not_as_added()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        EventFilter.Info(contains: "peers changed").Expect(0, () =>
            EventFilter.Info(contains: "peers carried over from the previous tunnel: 1; 1 configured").ExpectOne(Wait, () =>
                Assert.Equal(new PeerChangesApplied(1, 0, 0),
                    Control<PeerChangesApplied>(a, new ApplyPeerChanges(false, [], [a.PeerConfigFor(b)], CarriedOver: true)))));
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void Remove_all_peers_empties_the_device()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        var c = StartNode("c", 3);
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(c, withEndpoint: false)));
        Assert.Equal(2, Control<DeviceStatus>(a, GetDeviceStatus.Instance).Peers.Count);
        Assert.Equal(2, Control<AllPeersRemoved>(a, RemoveAllPeers.Instance).Count);
        Assert.Empty(Control<DeviceStatus>(a, GetDeviceStatus.Instance).Peers);
        Assert.False(a.Device.AllowedIps.TryLookup([10, 0, 0, 2], out _));
        StopAndAssertNoLeaks(a, b, c);
    }

    [Fact]
    public void One_transaction_removes_adds_updates_and_moves_prefixes_with_one_answer()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        var c = StartNode("c", 3);
        var d = StartNode("d", 4);
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(c, withEndpoint: false)));
        // c goes, d comes, and b takes c's old address and d's new one (a prefix has one owner).
        var bWithMore = a.PeerConfigFor(b) with { AllowedIps = [IpPrefix.Parse("10.0.0.2/32"), IpPrefix.Parse("10.0.0.3/32"), IpPrefix.Parse("10.0.0.4/32")] };
        var applied = Control<PeerChangesApplied>(a, new ApplyPeerChanges(false, [c.PublicKey], [a.PeerConfigFor(d, withEndpoint: false), bWithMore]));
        Assert.Equal(new PeerChangesApplied(Created: 1, Updated: 1, Removed: 1), applied);
        var status = Control<DeviceStatus>(a, GetDeviceStatus.Instance);
        Assert.Equal(
            new[] { b.PublicKey.ToBase64(), d.PublicKey.ToBase64() }.Order(),
            status.Peers.Select(p => p.PublicKey.ToBase64()).Order());
        Assert.Equal(["10.0.0.2/32", "10.0.0.3/32", "10.0.0.4/32"], status.Peers.Single(p => p.PublicKey == b.PublicKey).AllowedIps.Select(p => p.ToString()).Order());
        Assert.Empty(status.Peers.Single(p => p.PublicKey == d.PublicKey).AllowedIps);
        Assert.True(a.Device.AllowedIps.TryLookup([10, 0, 0, 4], out var owner));
        Assert.Equal(b.PublicKey, owner);
        // RemoveAll first, then the upserts: only d is left.
        applied = Control<PeerChangesApplied>(a, new ApplyPeerChanges(true, [], [a.PeerConfigFor(d, withEndpoint: false)]));
        Assert.Equal(new PeerChangesApplied(Created: 1, Updated: 0, Removed: 2), applied);
        Assert.Equal(d.PublicKey, Assert.Single(Control<DeviceStatus>(a, GetDeviceStatus.Instance).Peers).PublicKey);
        AwaitCondition(() => a.Device.AllowedIps.TryLookup([10, 0, 0, 4], out var o) && o == d.PublicKey, Wait);
        Assert.False(a.Device.AllowedIps.TryLookup([10, 0, 0, 2], out _));
        StopAndAssertNoLeaks(a, b, c, d);
    }
}
