using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

public sealed class UapiProtocolTests
{
    private static readonly WireGuardKey Private = TestKeys.New();
    private static readonly WireGuardKey PeerA = TestKeys.New();
    private static readonly WireGuardKey PeerB = TestKeys.New();
    private static readonly WireGuardKey Psk = TestKeys.New();

    [Fact]
    public void A_set_request_as_wg_writes_it_parses_into_device_and_peer_changes()
    {
        var request = UapiSetParser.Parse(
        [
            $"private_key={Private.ToHex()}",
            "listen_port=51820",
            "fwmark=7",
            "replace_peers=true",
            $"public_key={PeerA.ToHex()}",
            $"preshared_key={Psk.ToHex()}",
            "endpoint=[2001:db8::1]:4500",
            "persistent_keepalive_interval=25",
            "replace_allowed_ips=true",
            "allowed_ip=10.0.0.0/24",
            "allowed_ip=-fd00::/64",
            "protocol_version=1",
            $"public_key={PeerB.ToHex()}",
            "update_only=true",
            "endpoint=192.0.2.1:1",
            $"public_key={PeerA.ToHex()}",
            "remove=true",
        ]);

        Assert.Equal(Private, request.PrivateKey);
        Assert.Equal((ushort)51820, request.ListenPort);
        Assert.Equal(7u, request.Fwmark);
        Assert.True(request.ReplacePeers);
        Assert.Equal(3, request.Peers.Count);
        var a = request.Peers[0];
        Assert.Equal(PeerA, a.PublicKey);
        Assert.Equal(Psk, a.PresharedKey);
        Assert.Equal("[2001:db8::1]:4500", EndpointText.Format(a.Endpoint!.Value));
        Assert.Equal((ushort)25, a.PersistentKeepaliveSeconds);
        Assert.Equal(
            [new AllowedIpChange(AllowedIpChangeKind.ReplaceAll, null), new AllowedIpChange(AllowedIpChangeKind.Add, IpPrefix.Parse("10.0.0.0/24")), new AllowedIpChange(AllowedIpChangeKind.Remove, IpPrefix.Parse("fd00::/64"))],
            a.AllowedIps);
        Assert.True(request.Peers[1].UpdateOnly);
        Assert.Equal("192.0.2.1:1", request.Peers[1].Endpoint!.Value.ToString());
        Assert.True(request.Peers[2].Remove);
    }

    [Theory]
    [InlineData("no equals sign", UapiErrno.EPROTO)]
    [InlineData("private_key=zz", UapiErrno.EINVAL)]
    [InlineData("private_key=0123", UapiErrno.EINVAL)]
    [InlineData("listen_port=65536", UapiErrno.EINVAL)]
    [InlineData("listen_port=-1", UapiErrno.EINVAL)]
    [InlineData("fwmark=x", UapiErrno.EINVAL)]
    [InlineData("replace_peers=false", UapiErrno.EINVAL)]
    [InlineData("endpoint=1.2.3.4:5", UapiErrno.EINVAL)] // a peer key before any public_key
    [InlineData("colour=blue", UapiErrno.EINVAL)]
    public void Bad_device_lines_are_refused_with_their_errno(string line, int errno)
    {
        var error = Assert.Throws<UapiException>(() => UapiSetParser.Parse([line]));
        Assert.Equal(errno, error.Errno);
    }

    [Theory]
    [InlineData("public_key=nothex")]
    [InlineData("preshared_key=00")]
    [InlineData("endpoint=host.example:51820")]
    [InlineData("endpoint=1.2.3.4")]
    [InlineData("endpoint=[::1]")]
    [InlineData("endpoint=::1:51820")]
    [InlineData("endpoint=1.2.3.4:65536")]
    [InlineData("persistent_keepalive_interval=70000")]
    [InlineData("replace_allowed_ips=yes")]
    [InlineData("allowed_ip=10.0.0.0")]
    [InlineData("allowed_ip=10.0.0.0/33")]
    [InlineData("allowed_ip=-bad/8")]
    [InlineData("remove=1")]
    [InlineData("update_only=false")]
    [InlineData("protocol_version=2")]
    [InlineData("private_key=0000000000000000000000000000000000000000000000000000000000000000")]
    public void Bad_peer_lines_are_EINVAL(string line)
    {
        var error = Assert.Throws<UapiException>(() => UapiSetParser.Parse([$"public_key={PeerA.ToHex()}", line]));
        Assert.Equal(UapiErrno.EINVAL, error.Errno);
    }

    [Theory]
    [InlineData("endpoint=192.0.2.1:0", "192.0.2.1:0")]
    [InlineData("endpoint=[2001:db8::1]:0", "[2001:db8::1]:0")]
    public void An_endpoint_on_port_zero_is_taken_as_wireguard_go_takes_it(string line, string shown)
    {
        // wireguard-go's netip.ParseAddrPort accepts port 0; a send there fails per datagram, which the
        // socket skips (EINVAL is one of the refusals it counts). A configuration file still refuses it.
        var request = UapiSetParser.Parse([$"public_key={PeerA.ToHex()}", line]);
        var endpoint = Assert.Single(request.Peers).Endpoint!.Value;
        Assert.Equal(0, endpoint.Port);
        Assert.Equal(shown, Config.EndpointText.Format(endpoint));
    }

    [Theory]
    [InlineData("endpoint=[fe80::1%1]:51820", 1u, "[fe80::1%1]:51820")]
    [InlineData("endpoint=[fe80::1%lo]:51820", 1u, "[fe80::1%1]:51820")] // a name is the interface's index
    public void A_link_local_endpoint_takes_a_zone_and_shows_it_as_an_index(string line, uint scope, string shown)
    {
        var request = UapiSetParser.Parse([$"public_key={PeerA.ToHex()}", line]);
        var endpoint = Assert.Single(request.Peers).Endpoint!.Value;
        Assert.Equal(scope, endpoint.ScopeId);
        Assert.Equal(shown, Config.EndpointText.Format(endpoint));
        // What get prints, set takes back (wg showconf | wg setconf).
        Assert.Equal(endpoint, Assert.Single(UapiSetParser.Parse([$"public_key={PeerA.ToHex()}", "endpoint=" + shown]).Peers).Endpoint);
    }

    /// <summary>
    /// wireguard-go clamps a private key when it is set (NoisePrivateKey.FromMaybeZeroHex), so
    /// `wg show IF private-key` prints the clamped key and its clamped twin is the same key; we kept
    /// the bytes as given (found by a review comparing both daemons: 0xaa... printed as given, and
    /// setting its twin rebuilt the tunnel). The zero key ("none") stays zero.
    /// </summary>
    [Fact]
    public void A_private_key_is_stored_clamped_as_wireguard_go_stores_it()
    {
        string given = string.Concat(Enumerable.Repeat("aa", 32));
        var request = UapiSetParser.Parse([$"private_key={given}"]);
        Assert.Equal("a8" + string.Concat(Enumerable.Repeat("aa", 30)) + "6a", request.PrivateKey!.Value.ToHex());
        Assert.Equal("qKqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqmo=", request.PrivateKey.Value.ToBase64()); // wireguard-go's `wg show`
        Assert.True(UapiSetParser.Parse([$"private_key={new string('0', 64)}"]).PrivateKey!.Value.IsZero);

        var file = new WgQuickConfigParser().Parse("wg0.conf", "[Interface]\nPrivateKey = qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqo=\n");
        Assert.Equal(request.PrivateKey, file.Interface.PrivateKey);
    }

    [Fact]
    public async Task Setting_the_clamped_twin_of_the_private_key_changes_nothing()
    {
        var control = new InMemoryTunnelControl();
        string given = string.Concat(Enumerable.Repeat("aa", 32));
        Assert.Equal(["private key"], await UapiSetApplier.ApplyAsync(UapiSetParser.Parse([$"private_key={given}"]), control, CancellationToken.None));
        string twin = "a8" + string.Concat(Enumerable.Repeat("aa", 30)) + "6a";
        Assert.Empty(await UapiSetApplier.ApplyAsync(UapiSetParser.Parse([$"private_key={twin}"]), control, CancellationToken.None));
        Assert.Empty(await UapiSetApplier.ApplyAsync(UapiSetParser.Parse([$"private_key={given}"]), control, CancellationToken.None));
    }

    [Fact]
    public void A_zone_no_interface_has_is_refused_with_its_name()
    {
        var error = Assert.Throws<UapiException>(() => UapiSetParser.Parse([$"public_key={PeerA.ToHex()}", "endpoint=[fe80::1%nosuchif9]:51820"]));
        Assert.Equal(UapiErrno.EINVAL, error.Errno);
        Assert.Contains("nosuchif9", error.Message);
    }

    [Fact]
    public void Errors_never_quote_a_key()
    {
        string almostKey = Psk.ToHex()[..62] + "zz";
        var error = Assert.Throws<UapiException>(() => UapiSetParser.Parse([$"public_key={PeerA.ToHex()}", $"preshared_key={almostKey}"]));
        Assert.DoesNotContain(almostKey, error.Message);
    }

    [Theory]
    [InlineData("{K}")]
    [InlineData("private_key {K}")]
    [InlineData("private_key:{K}")]
    [InlineData("private_key: {K}=")]
    [InlineData("{K}=private_key")]
    [InlineData(" private_key={K}")]
    [InlineData("private_key ={K}")]
    [InlineData("listen_port={K}")]
    [InlineData("fwmark={K}")]
    [InlineData("replace_peers={K}")]
    public void Mistyped_device_lines_never_quote_the_key(string template)
    {
        string secret = Psk.ToHex();
        var error = Assert.Throws<UapiException>(() => UapiSetParser.Parse([template.Replace("{K}", secret)]));
        AssertLeaksNothingOf(secret, error.Message);
    }

    [Theory]
    [InlineData("{K}")]
    [InlineData("preshared_key:{K}")]
    [InlineData("preshared_key {K}=")]
    [InlineData("{K}=1")]
    [InlineData("allowed_ip={K}")]
    [InlineData("endpoint={K}")]
    [InlineData("protocol_version={K}")]
    [InlineData("update_only={K}")]
    [InlineData("persistent_keepalive_interval={K}")]
    public void Mistyped_peer_lines_never_quote_the_key(string template)
    {
        string secret = Psk.ToHex();
        var error = Assert.Throws<UapiException>(() => UapiSetParser.Parse([$"public_key={PeerA.ToHex()}", template.Replace("{K}", secret)]));
        AssertLeaksNothingOf(secret, error.Message);
    }

    [Fact]
    public void A_plain_unknown_key_is_still_named()
    {
        var error = Assert.Throws<UapiException>(() => UapiSetParser.Parse(["colour=blue"]));
        Assert.Equal("invalid UAPI device key: colour", error.Message);
    }

    private static void AssertLeaksNothingOf(string secret, string message)
    {
        for (int i = 0; i + 8 <= secret.Length; i++)
        {
            Assert.DoesNotContain(secret.Substring(i, 8), message, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public void Get_is_formatted_in_wireguard_go_order_with_hex_keys()
    {
        var status = new DeviceStatus
        {
            PrivateKey = Private,
            PublicKey = InMemoryTunnelControl.PublicKeyOf(Private),
            ListenPort = 51820,
            Fwmark = 3,
            Peers =
            [
                new PeerStatus
                {
                    Config = new PeerConfig
                    {
                        PublicKey = PeerA,
                        PresharedKey = Psk,
                        PersistentKeepaliveSeconds = 25,
                        AllowedIps = [IpPrefix.Parse("10.0.0.0/24"), IpPrefix.Parse("fd00::/64")],
                        EcnMode = EcnMode.Compatibility,
                    },
                    Endpoint = UdpEndpoint.FromIPEndPoint(System.Net.IPEndPoint.Parse("[2001:db8::1]:4500")),
                    LastHandshake = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000).AddTicks(1234567),
                    RxBytes = 10,
                    TxBytes = 20,
                    Ecn = new EcnCounters(1, 2, 3, 4, 5),
                    Drops = new PeerDropCounts(QueueFull: 12, NotSent: 13, SourceNotAllowed: 14, Refused: 15, OutboundRefused: 16, Restarts: 1, RestartDrops: 17),
                },
                new PeerStatus { Config = new PeerConfig { PublicKey = PeerB } },
            ],
            BuffersOutstanding = 130,
            Drops = new Firezone.Actors.Actors.Peers.DeviceDropCounts(TunPacketsNoRoute: 1, TunPacketsInvalid: 2, DatagramsInvalid: 3,
                DatagramsUnknownReceiver: 4, HandshakesRejected: 5, HandshakesUnknownPeer: 6, CookieRepliesSent: 7, PoolExhausted: 8,
                HandshakesRateLimited: 9, HandshakesQueueFull: 10, TunPacketsNoRouteMulticast: 11),
        };

        string expected =
            $"private_key={Private.ToHex()}\nlisten_port=51820\nfwmark=3\n" +
            $"public_key={PeerA.ToHex()}\npreshared_key={Psk.ToHex()}\nprotocol_version=1\nendpoint=[2001:db8::1]:4500\n" +
            "last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=123456700\ntx_bytes=20\nrx_bytes=10\npersistent_keepalive_interval=25\n" +
            "allowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\n" +
            $"public_key={PeerB.ToHex()}\npreshared_key={new string('0', 64)}\nprotocol_version=1\n" +
            "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n";
        Assert.Equal(expected, UapiGetFormatter.Format(status, extensions: false));

        string extended = UapiGetFormatter.Format(status, extensions: true);
        Assert.Contains("fz_ecn_mode=compatibility\nfz_ect_sent=1\nfz_ce_received=2\nfz_ce_propagated=3\nfz_ecn_drops=4\nfz_ecn_alarms=5\n" +
            "fz_packets_queue_full=12\nfz_datagrams_not_sent=13\nfz_packets_source_not_allowed=14\nfz_datagrams_refused=15\n" +
            "fz_packets_outbound_refused=16\nfz_restarts=1\nfz_restart_drops=17\n", extended);
        // A peer that dropped nothing has none of the drop lines.
        Assert.EndsWith("fz_ecn_mode=normal\nfz_ect_sent=0\nfz_ce_received=0\nfz_ce_propagated=0\nfz_ecn_drops=0\nfz_ecn_alarms=0\n", extended);
        Assert.Contains($"fz_public_key={status.PublicKey!.Value.ToHex()}\n", extended);
        Assert.Contains("fz_buffers_outstanding=130\n", extended);

        // What firezone-tunnel show reads back is what was formatted.
        var parsed = UapiGetParser.Parse(extended.TrimEnd('\n').Split('\n'));
        Assert.Equal(status.PrivateKey, parsed.PrivateKey);
        Assert.Equal(status.PublicKey, parsed.PublicKey);
        Assert.Equal(status.ListenPort, parsed.ListenPort);
        Assert.Equal(status.Fwmark, parsed.Fwmark);
        Assert.Equal(130, parsed.BuffersOutstanding);
        Assert.Contains("fz_tun_packets_no_route_multicast=11\n", extended);
        Assert.Contains("fz_datagrams_invalid=3\nfz_datagrams_unknown_receiver=4\nfz_handshakes_rejected=5\n", extended);
        Assert.Equal(status.Drops, parsed.Drops);
        string shown = Firezone.Actors.Host.Cli.ShowFormatter.Format("wg0", parsed, DateTimeOffset.UtcNow);
        Assert.Contains("  packet buffers: 130 buffers outstanding\n", shown);
        Assert.Contains("  dropped: 3 datagrams that are no WireGuard message, 4 datagrams for no session (unknown receiver index), " +
            "5 handshake messages refused (bad mac1 or mac2, or no room for a cookie reply), 6 initiations from no configured peer, 9 initiations over their source's rate limit, " +
            "10 initiations beyond the handshake queue, 1 packets to addresses in no peer's allowed IPs, 2 invalid packets from the interface\n", shown);
        Assert.Contains("  under load: 7 cookie replies sent\n", shown);
        // A tunnel and peers that dropped nothing show neither line.
        string quiet = Firezone.Actors.Host.Cli.ShowFormatter.Format("wg0",
            UapiGetParser.Parse(UapiGetFormatter.Format(status with
            {
                Drops = Firezone.Actors.Actors.Peers.DeviceDropCounts.None,
                Peers = [status.Peers[0] with { Drops = default }, status.Peers[1]],
            }, extensions: true).TrimEnd('\n').Split('\n')),
            DateTimeOffset.UtcNow);
        Assert.DoesNotContain("dropped:", quiet);
        Assert.DoesNotContain("under load:", quiet);
        Assert.Equal(2, parsed.Peers.Count);
        var a = parsed.Peers[0];
        Assert.Equal(status.Peers[0].Endpoint, a.Endpoint);
        Assert.Equal(status.Peers[0].LastHandshake, a.LastHandshake);
        Assert.Equal(status.Peers[0].Ecn, a.Ecn);
        Assert.Equal(status.Peers[0].Drops, a.Drops);
        Assert.Equal(default, parsed.Peers[1].Drops);
        Assert.Contains("  dropped: 14 packets from addresses outside its allowed IPs, 15 datagrams refused (failed authentication, replayed or malformed), " +
            "12 packets behind a full queue, 13 datagrams the socket did not send, 16 packets from the interface refused (not IP, too large or empty), " +
            "1 restart(s) after a fault (17 packets queued then)\n", shown);
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Count(shown, "  dropped: ")); // the device's and peer A's, none for peer B
        Assert.Equal(EcnMode.Compatibility, a.Config.EcnMode);
        Assert.Equal(Psk, a.Config.PresharedKey);
        Assert.Equal(status.Peers[0].Config.AllowedIps, a.Config.AllowedIps);
        Assert.Equal((10UL, 20UL), (a.RxBytes, a.TxBytes));
        Assert.Null(parsed.Peers[1].Config.PresharedKey);
        Assert.Null(parsed.Peers[1].LastHandshake);
    }

    /// <summary>
    /// firezone-tunnel show prints a link-local endpoint's zone by the interface's name, as wg show
    /// does (getnameinfo); the UAPI line carries the index. It printed <c>[fe80::1%1]:51820</c>.
    /// </summary>
    [Fact]
    public void Show_names_a_link_local_endpoints_zone_as_wg_show_does()
    {
        var status = new DeviceStatus
        {
            Peers =
            [
                new PeerStatus
                {
                    Config = new PeerConfig { PublicKey = PeerA },
                    Endpoint = UdpEndpoint.FromIPEndPoint(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("fe80::1%1"), 51820)),
                },
            ],
        };
        Assert.Contains("endpoint=[fe80::1%1]:51820\n", UapiGetFormatter.Format(status, extensions: false));
        Assert.Contains("  endpoint: [fe80::1%lo]:51820\n", Firezone.Actors.Host.Cli.ShowFormatter.Format("wg0", status, DateTimeOffset.UtcNow));
    }

    /// <summary>
    /// wg show counts a handshake's age in whole seconds of the clock, time(NULL) less the
    /// handshake's tv_sec, and says so when the handshake is later than now (the clock was set back).
    /// firezone-tunnel show cut the exact difference down to seconds, so it was often a second
    /// short of wg show's for the same daemon (1.3 s across two clock seconds: wg "2 seconds", ours
    /// "1 second"), and called a future handshake "Now". Past 365 days wg counts years too (a
    /// Gateway's long-gone Client on a host up that long).
    /// </summary>
    [Theory]
    [InlineData(98.9, 100.2, "2 seconds ago")]
    [InlineData(100.0, 100.9, "Now")]
    [InlineData(99.99, 100.01, "1 second ago")]
    [InlineData(30.5, 125.0, "1 minute, 35 seconds ago")]
    [InlineData(105.0, 100.0, "(System clock wound backward; connection problems may ensue.)")]
    [InlineData(0.0, 400 * 86400.0 + 3661, "1 year, 35 days, 1 hour, 1 minute, 1 second ago")]
    public void Show_counts_the_latest_handshake_in_clock_seconds_as_wg_show_does(double handshakeSeconds, double nowSeconds, string expected)
    {
        var epoch = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var status = new DeviceStatus
        {
            Peers = [new PeerStatus { Config = new PeerConfig { PublicKey = PeerA }, LastHandshake = epoch.AddSeconds(handshakeSeconds) }],
        };
        Assert.Contains($"  latest handshake: {expected}\n", Firezone.Actors.Host.Cli.ShowFormatter.Format("wg0", status, epoch.AddSeconds(nowSeconds)));
    }

    [Fact]
    public void An_empty_device_formats_as_nothing()
    {
        Assert.Equal("", UapiGetFormatter.Format(new DeviceStatus(), extensions: false));
    }
}
