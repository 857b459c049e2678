using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

public sealed class UapiSetApplierTests
{
    private readonly InMemoryTunnelControl _control = new();
    private readonly WireGuardKey _a = TestKeys.New();
    private readonly WireGuardKey _b = TestKeys.New();

    private Task SetAsync(params string[] lines) =>
        UapiSetApplier.ApplyAsync(UapiSetParser.Parse(lines), _control, CancellationToken.None);

    private async Task<List<string>> AllowedAsync(WireGuardKey key)
    {
        var status = await _control.GetStatusAsync(CancellationToken.None);
        return status.Peers.Single(p => p.Config.PublicKey == key).Config.AllowedIps.Select(p => p.ToString()).ToList();
    }

    [Fact]
    public async Task Allowed_ips_accumulate_and_are_removed_and_replaced_in_order()
    {
        await SetAsync($"public_key={_a.ToHex()}", "allowed_ip=10.0.0.0/24", "allowed_ip=10.0.1.0/24");
        await SetAsync($"public_key={_a.ToHex()}", "allowed_ip=10.0.2.0/24", "allowed_ip=-10.0.0.0/24");
        Assert.Equal(["10.0.1.0/24", "10.0.2.0/24"], await AllowedAsync(_a));
        await SetAsync($"public_key={_a.ToHex()}", "allowed_ip=10.9.0.0/16", "replace_allowed_ips=true", "allowed_ip=10.8.0.0/16");
        Assert.Equal(["10.8.0.0/16"], await AllowedAsync(_a));
    }

    /// <summary>
    /// The allowed IPs are a set kept in the order they were added (a list's Contains and Remove per
    /// line made one peer's 40,000 allowed_ip lines take 3 s): one added again goes last, as in
    /// wireguard-go (a review compared both: the list kept its place), as does one removed and added
    /// again, and one moved to another peer goes last there.
    /// </summary>
    [Fact]
    public async Task Allowed_ips_keep_the_order_they_were_added_in()
    {
        await SetAsync($"public_key={_a.ToHex()}", "allowed_ip=10.0.0.0/24", "allowed_ip=10.0.1.0/24", "allowed_ip=10.0.2.0/24", "allowed_ip=10.0.0.0/24");
        Assert.Equal(["10.0.1.0/24", "10.0.2.0/24", "10.0.0.0/24"], await AllowedAsync(_a));
        await SetAsync($"public_key={_a.ToHex()}", "allowed_ip=-10.0.0.0/24", "allowed_ip=10.0.3.0/24", "allowed_ip=10.0.0.0/24");
        Assert.Equal(["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24", "10.0.0.0/24"], await AllowedAsync(_a));
        await SetAsync($"public_key={_b.ToHex()}", "allowed_ip=10.9.0.0/16", "allowed_ip=10.0.2.0/24");
        Assert.Equal(["10.0.1.0/24", "10.0.3.0/24", "10.0.0.0/24"], await AllowedAsync(_a));
        Assert.Equal(["10.9.0.0/16", "10.0.2.0/24"], await AllowedAsync(_b));
    }

    /// <summary>
    /// `wg set IF peer KEY` with nothing else goes to the tunnel as the peer's whole configuration:
    /// what starts a peer supervision stopped again (`firezone-tunnel show`'s "stopped:" line names
    /// that command; the PeerSupervisor creates a new connection for a key it has none for).
    /// </summary>
    [Fact]
    public async Task A_set_of_only_a_peers_key_passes_its_whole_configuration_on()
    {
        await SetAsync($"public_key={_a.ToHex()}", "allowed_ip=10.0.0.0/24", "endpoint=192.0.2.1:51820", "persistent_keepalive_interval=25");
        var before = (await _control.GetStatusAsync(CancellationToken.None)).Peers.Single().Config;
        _control.Calls.Clear();

        await SetAsync($"public_key={_a.ToHex()}");

        Assert.Equal([$"AddOrUpdatePeer {_a.ToBase64()}"], _control.Calls);
        var after = (await _control.GetStatusAsync(CancellationToken.None)).Peers.Single().Config;
        Assert.Equal(before with { AllowedIps = [] }, after with { AllowedIps = [] });
        Assert.Equal(before.AllowedIps, after.AllowedIps);
    }

    [Fact]
    public async Task A_named_endpoint_applies_even_unchanged_and_other_changes_keep_the_roamed_one()
    {
        // wireguard-go sets the endpoint whenever a set=1 names it: `wg set IF peer K endpoint E`
        // (or wg syncconf of the file) sends a peer that roamed away from E back to it.
        await SetAsync($"public_key={_a.ToHex()}", "endpoint=192.0.2.1:51820");
        var roamed = UdpEndpoint.FromIPv4([198, 51, 100, 7], 40000);
        _control.SetLiveState(_a, p => p with { Endpoint = roamed });

        await SetAsync($"public_key={_a.ToHex()}", "persistent_keepalive_interval=25", "allowed_ip=10.0.0.0/24");
        Assert.Equal(roamed, await EndpointAsync(_a));

        await SetAsync($"public_key={_a.ToHex()}", "endpoint=192.0.2.1:51820");
        Assert.Equal(UdpEndpoint.FromIPv4([192, 0, 2, 1], 51820), await EndpointAsync(_a));
    }

    private async Task<UdpEndpoint> EndpointAsync(WireGuardKey key) =>
        (await _control.GetStatusAsync(CancellationToken.None)).Peers.Single(p => p.Config.PublicKey == key).Endpoint;

    [Fact]
    public async Task An_allowed_ip_moves_to_the_peer_that_claims_it()
    {
        await SetAsync($"public_key={_a.ToHex()}", "allowed_ip=10.0.0.0/24", "allowed_ip=10.0.1.0/24");
        await SetAsync($"public_key={_b.ToHex()}", "allowed_ip=10.0.0.0/24");
        Assert.Equal(["10.0.1.0/24"], await AllowedAsync(_a));
        Assert.Equal(["10.0.0.0/24"], await AllowedAsync(_b));
    }

    [Fact]
    public async Task Update_only_does_not_create_and_remove_deletes()
    {
        await SetAsync($"public_key={_a.ToHex()}", "update_only=true", "allowed_ip=10.0.0.0/24");
        Assert.Empty((await _control.GetStatusAsync(CancellationToken.None)).Peers);

        await SetAsync($"public_key={_a.ToHex()}", $"public_key={_b.ToHex()}");
        await SetAsync($"public_key={_a.ToHex()}", "update_only=true", "persistent_keepalive_interval=5", $"public_key={_b.ToHex()}", "remove=true");
        var status = await _control.GetStatusAsync(CancellationToken.None);
        var only = Assert.Single(status.Peers);
        Assert.Equal(_a, only.Config.PublicKey);
        Assert.Equal((ushort)5, only.Config.PersistentKeepaliveSeconds);
    }

    [Fact]
    public async Task Replace_peers_leaves_only_the_peers_of_the_request()
    {
        await SetAsync($"public_key={_a.ToHex()}", "allowed_ip=10.0.0.0/24", "persistent_keepalive_interval=9");
        await SetAsync("replace_peers=true", $"public_key={_b.ToHex()}", "allowed_ip=10.0.1.0/24");
        var status = await _control.GetStatusAsync(CancellationToken.None);
        Assert.Equal(_b, Assert.Single(status.Peers).Config.PublicKey);
        Assert.Contains("RemoveAllPeers", _control.Calls);

        // A peer named again after replace_peers starts from nothing (wireguard-go re-creates it).
        await SetAsync("replace_peers=true", $"public_key={_b.ToHex()}");
        status = await _control.GetStatusAsync(CancellationToken.None);
        Assert.Empty(Assert.Single(status.Peers).Config.AllowedIps);
    }

    [Fact]
    public async Task Zero_keys_clear_the_private_and_preshared_keys()
    {
        var psk = TestKeys.New();
        await SetAsync($"private_key={TestKeys.New().ToHex()}", $"public_key={_a.ToHex()}", $"preshared_key={psk.ToHex()}");
        var status = await _control.GetStatusAsync(CancellationToken.None);
        Assert.NotNull(status.PrivateKey);
        Assert.Equal(psk, status.Peers[0].Config.PresharedKey);

        string zero = new('0', 64);
        await SetAsync($"private_key={zero}", $"public_key={_a.ToHex()}", $"preshared_key={zero}");
        status = await _control.GetStatusAsync(CancellationToken.None);
        Assert.Null(status.PrivateKey);
        Assert.Null(status.Peers[0].Config.PresharedKey);
    }

    [Fact]
    public async Task A_peer_with_the_devices_own_public_key_is_ignored()
    {
        var privateKey = TestKeys.New();
        await SetAsync($"private_key={privateKey.ToHex()}");
        await SetAsync($"public_key={InMemoryTunnelControl.PublicKeyOf(privateKey).ToHex()}", "allowed_ip=10.0.0.0/8");
        Assert.Empty((await _control.GetStatusAsync(CancellationToken.None)).Peers);
    }

    [Fact]
    public async Task A_new_private_key_removes_the_peer_that_has_its_public_key()
    {
        var privateKey = TestKeys.New();
        await SetAsync($"public_key={InMemoryTunnelControl.PublicKeyOf(privateKey).ToHex()}", "allowed_ip=10.0.0.0/8");
        await SetAsync($"public_key={_a.ToHex()}", "allowed_ip=10.1.0.0/16");
        Assert.Equal(2, (await _control.GetStatusAsync(CancellationToken.None)).Peers.Count);
        await SetAsync($"private_key={privateKey.ToHex()}");
        var peer = Assert.Single((await _control.GetStatusAsync(CancellationToken.None)).Peers);
        Assert.Equal(_a, peer.Config.PublicKey);
    }

    [Fact]
    public async Task A_peer_with_the_public_key_of_the_private_key_set_in_the_same_request_is_ignored()
    {
        var privateKey = TestKeys.New();
        await SetAsync($"private_key={privateKey.ToHex()}", $"public_key={InMemoryTunnelControl.PublicKeyOf(privateKey).ToHex()}", "allowed_ip=10.0.0.0/8",
            $"public_key={_a.ToHex()}", "allowed_ip=10.1.0.0/16");
        var peer = Assert.Single((await _control.GetStatusAsync(CancellationToken.None)).Peers);
        Assert.Equal(_a, peer.Config.PublicKey);
    }

    [Fact]
    public async Task Removing_and_re_adding_a_peer_in_one_request_recreates_it()
    {
        await SetAsync($"public_key={_a.ToHex()}", "allowed_ip=10.0.0.0/24");
        _control.Calls.Clear();
        await SetAsync($"public_key={_a.ToHex()}", "remove=true", $"public_key={_a.ToHex()}", "allowed_ip=10.0.5.0/24");
        Assert.Equal([$"RemovePeer {_a.ToBase64()}", $"AddOrUpdatePeer {_a.ToBase64()}"], _control.Calls);
        Assert.Equal(["10.0.5.0/24"], await AllowedAsync(_a));
    }

    [Fact]
    public async Task Device_settings_are_passed_on()
    {
        await SetAsync("listen_port=4242", "fwmark=51");
        var status = await _control.GetStatusAsync(CancellationToken.None);
        Assert.Equal((ushort)4242, status.ListenPort);
        Assert.Equal(51u, status.Fwmark);
    }

    [Fact]
    public async Task Within_one_request_a_prefix_moves_between_peers_and_a_released_one_is_not_taken_back()
    {
        var c = TestKeys.New();
        // a takes 10.0.0.1, b takes it from a, a takes it back; then a drops it with replace_allowed_ips,
        // and c claims 10.0.0.2, which a released earlier in the same request.
        await SetAsync(
            $"public_key={_a.ToHex()}", "allowed_ip=10.0.0.1/32", "allowed_ip=10.0.0.2/32",
            $"public_key={_b.ToHex()}", "allowed_ip=10.0.0.1/32",
            $"public_key={_a.ToHex()}", "allowed_ip=10.0.0.1/32", "allowed_ip=-10.0.0.2/32",
            $"public_key={c.ToHex()}", "allowed_ip=10.0.0.2/32");
        Assert.Equal(["10.0.0.1/32"], await AllowedAsync(_a));
        Assert.Empty(await AllowedAsync(_b));
        Assert.Equal(["10.0.0.2/32"], await AllowedAsync(c));

        await SetAsync(
            $"public_key={_a.ToHex()}", "replace_allowed_ips=true", "allowed_ip=10.0.0.3/32",
            $"public_key={_b.ToHex()}", "allowed_ip=10.0.0.1/32",
            $"public_key={c.ToHex()}", "remove=true",
            $"public_key={_b.ToHex()}", "allowed_ip=10.0.0.2/32");
        Assert.Equal(["10.0.0.3/32"], await AllowedAsync(_a));
        Assert.Equal(["10.0.0.1/32", "10.0.0.2/32"], await AllowedAsync(_b));
        Assert.Equal(2, (await _control.GetStatusAsync(CancellationToken.None)).Peers.Count);
    }

    [Fact]
    public async Task Thousands_of_peers_in_one_request_each_keep_their_own_prefix()
    {
        var lines = new List<string>();
        var keys = new List<WireGuardKey>();
        for (int i = 0; i < 3000; i++)
        {
            var key = TestKeys.New();
            keys.Add(key);
            lines.Add($"public_key={key.ToHex()}");
            lines.Add($"allowed_ip=10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32");
        }
        // The last peer also claims the first peer's address.
        lines.Add("allowed_ip=10.128.0.0/32");
        await SetAsync([.. lines]);
        var status = await _control.GetStatusAsync(CancellationToken.None);
        Assert.Equal(3000, status.Peers.Count);
        Assert.Empty(status.Peers.Single(p => p.Config.PublicKey == keys[0]).Config.AllowedIps);
        Assert.Equal(["10.128.11.183/32", "10.128.0.0/32"], await AllowedAsync(keys[2999]));
        Assert.Equal(["10.128.0.1/32"], await AllowedAsync(keys[1]));
    }

    /// <summary>
    /// wireguard-go configures at most 65,536 peers (device.MaxPeers; NewPeer fails "too many peers",
    /// EINVAL): without a bound, `wg set` or `wg addconf` could add peers until the daemon runs out of
    /// memory (about 2.5 KB each; a review added 70,000 with one request, which wireguard-go refuses).
    /// A request that would go past it is refused whole, as every failed request here changes
    /// nothing; one that removes a peer to make room for another is not. Here with a bound of 3 (the
    /// in-memory control takes minutes for 65,536 peers).
    /// </summary>
    [Fact]
    public async Task A_request_that_would_configure_more_peers_than_the_bound_is_refused_and_changes_nothing()
    {
        Assert.Equal(65536, Control.DeviceLimits.MaxPeers);
        var keys = new[] { TestKeys.New(), TestKeys.New(), TestKeys.New() };
        await SetBoundedAsync(3, $"public_key={keys[0].ToHex()}", $"public_key={keys[1].ToHex()}", $"public_key={keys[2].ToHex()}");
        var privateKey = TestKeys.New();

        var refused = await Assert.ThrowsAsync<UapiException>(() => SetBoundedAsync(3, $"private_key={privateKey.ToHex()}", $"public_key={_a.ToHex()}"));
        Assert.Equal(UapiErrno.EINVAL, refused.Errno);
        var status = await _control.GetStatusAsync(CancellationToken.None);
        Assert.Equal(3, status.Peers.Count);
        Assert.Null(status.PrivateKey);

        await SetBoundedAsync(3, $"public_key={keys[0].ToHex()}", "remove=true", $"public_key={_a.ToHex()}");
        status = await _control.GetStatusAsync(CancellationToken.None);
        Assert.Equal(3, status.Peers.Count);
        Assert.Contains(status.Peers, p => p.Config.PublicKey == _a);
        await SetBoundedAsync(3, $"public_key={_a.ToHex()}", "allowed_ip=10.0.0.0/24");
    }

    private Task SetBoundedAsync(int maxPeers, params string[] lines) =>
        UapiSetApplier.ApplyAsync(UapiSetParser.Parse(lines), _control, UapiSetApplier.Normal, maxPeers, CancellationToken.None);

    /// <summary>
    /// A one-peer set on a daemon with thousands of peers drafts that peer and the one it takes a
    /// prefix from, not all of them, and starts from the configuration, not the live status: a
    /// `wg set` of one peer on 10,000 cost 41 ms and 46 ms of the daemon's CPU (status of every peer,
    /// a draft of every peer), now 7 ms and about 5 ms (wireguard-go 3 to 6 ms; 2026-11-29).
    /// </summary>
    [Fact]
    public async Task A_one_peer_set_among_thousands_drafts_only_the_peers_it_changes_and_reads_no_status()
    {
        var peers = Enumerable.Range(0, 5000).Select(i => new PeerConfig
        {
            PublicKey = TestKeys.New(),
            AllowedIps = [IpPrefix.Parse($"10.{i / 256}.{i % 256}.1/32")],
        }).ToArray();
        var control = new ConfigurationOnly(peers);
        var newcomer = TestKeys.New();

        await UapiSetApplier.ApplyAsync(
            UapiSetParser.Parse([$"public_key={newcomer.ToHex()}", "allowed_ip=10.3.4.1/32", "allowed_ip=10.200.0.1/32"]), control, CancellationToken.None);

        var changes = Assert.Single(control.Applied);
        Assert.False(changes.RemoveAll);
        Assert.Empty(changes.Remove);
        // The newcomer, and peer 772 (10.3.4.1), which lost its prefix to it.
        var lost = peers[3 * 256 + 4].PublicKey;
        Assert.Equal(new[] { newcomer, lost }.Select(k => k.ToHex()).Order(), changes.Upsert.Select(p => p.PublicKey.ToHex()).Order());
        Assert.Empty(changes.Upsert.Single(p => p.PublicKey == lost).AllowedIps);
        Assert.Equal(["10.3.4.1/32", "10.200.0.1/32"], changes.Upsert.Single(p => p.PublicKey == newcomer).AllowedIps.Select(p => p.ToString()));

        var draft = new UapiSetDraft(peers);
        var found = draft.Find(peers[10].PublicKey);
        Assert.NotNull(found);
        Assert.Single(draft.Peers); // only the one looked up
    }

    /// <summary>
    /// The peers one request creates are added in the request's order (wg show lists them so, as
    /// the kernel's list does) also when a peer it looked at before them is removed in it: the draft's
    /// dictionary put a peer created after the removal into the freed place, before the earlier one.
    /// </summary>
    [Fact]
    public async Task New_peers_keep_the_request_order_after_an_earlier_drafted_peer_is_removed()
    {
        var first = TestKeys.New();
        var second = TestKeys.New();
        await SetAsync($"public_key={_a.ToHex()}");

        await SetAsync($"public_key={_a.ToHex()}", "persistent_keepalive_interval=5", $"public_key={first.ToHex()}",
            $"public_key={_a.ToHex()}", "remove=true", $"public_key={second.ToHex()}");

        var status = await _control.GetStatusAsync(CancellationToken.None);
        Assert.Equal([first.ToHex(), second.ToHex()], status.Peers.Select(p => p.Config.PublicKey.ToHex()));
    }

    /// <summary>A control that answers the configuration and records the changes; reading the status fails the test.</summary>
    private sealed class ConfigurationOnly(IReadOnlyList<PeerConfig> peers) : Firezone.Actors.Host.Control.ITunnelControl
    {
        public List<(bool RemoveAll, IReadOnlyList<WireGuardKey> Remove, IReadOnlyList<PeerConfig> Upsert)> Applied { get; } = [];

        public Task<Firezone.Actors.Host.Control.DeviceStatus> GetStatusAsync(CancellationToken cancellationToken) =>
            throw new InvalidOperationException("a set read the live status of every peer");

        public Task<Firezone.Actors.Host.Control.DeviceConfiguration> GetConfigurationAsync(CancellationToken cancellationToken) =>
            Task.FromResult(new Firezone.Actors.Host.Control.DeviceConfiguration { Peers = peers });

        public Task ApplyPeerChangesAsync(bool removeAll, IReadOnlyList<WireGuardKey> remove, IReadOnlyList<PeerConfig> upsert,
            IReadOnlySet<WireGuardKey> endpointNamed, CancellationToken cancellationToken)
        {
            Applied.Add((removeAll, remove, upsert));
            return Task.CompletedTask;
        }

        public Task SetPrivateKeyAsync(WireGuardKey? privateKey, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task SetListenPortAsync(ushort port, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task SetFwmarkAsync(uint fwmark, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task AddOrUpdatePeerAsync(PeerConfig peer, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task RemoveAllPeersAsync(CancellationToken cancellationToken) => throw new NotSupportedException();
    }
}
