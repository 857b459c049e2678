using Firezone.Actors.Engine.Crypto;
using System.Net;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Host.Config;

namespace Firezone.Actors.Host.Tests;

public sealed class ConfigParserTests
{
    private const string PrivateKey = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    private const string PeerKeyA = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    private const string PeerKeyB = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
    private const string Psk = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";

    private sealed class FakeResolver : IHostNameResolver
    {
        public IReadOnlyList<IPAddress> Resolve(string host) => host switch
        {
            "vpn.example" => [IPAddress.Parse("2001:db8::9"), IPAddress.Parse("192.0.2.7")],
            "v4first.example" => [IPAddress.Parse("192.0.2.8"), IPAddress.Parse("2001:db8::11")],
            "v6only.example" => [IPAddress.Parse("2001:db8::10")],
            _ => IPAddress.TryParse(host, out var a) ? [a] : [],
        };
    }

    /// <summary>A host whose rt_tables names "vpn" (as in "200 vpn"); names are case-sensitive, as in iproute2.</summary>
    private static readonly RouteTableNames TableNames = new(["vpn"]);

    private static TunnelConfig Parse(string text) => new WgQuickConfigParser(new FakeResolver(), TableNames).Parse("/etc/wg/wg0.conf", text);

    [Fact]
    public void A_full_wg_quick_file_parses_with_every_key()
    {
        var config = Parse($"""
            # a comment line
            [Interface]
            PrivateKey = {PrivateKey}
            ListenPort = 51820
            Address = 10.0.0.1/24, fd00::1/64
            Address = 10.0.1.1/24
            MTU = 1420
            FwMark = 0x1234
            DNS = 1.1.1.1
            Table = off
            PreUp = echo pre
            PostUp = iptables -A FORWARD -i %i -j ACCEPT
            PreDown = echo down
            PostDown = iptables -D FORWARD -i %i -j ACCEPT
            SaveConfig = false
            #! Role = gateway
            #! EcnMode = compatibility

            [Peer]
            PublicKey = {PeerKeyA}
            PresharedKey = {Psk}
            AllowedIPs = 10.0.0.2/32, fd00::2/128
            AllowedIPs = 192.168.0.0/16
            Endpoint = 192.0.2.1:51820
            PersistentKeepalive = 25
            #! EcnMode = off

            [Peer]
            PublicKey = {PeerKeyB}
            AllowedIPs = 10.0.0.3/32 # trailing comment
            Endpoint = [2001:db8::1]:4500
            PersistentKeepalive = off
            """);

        var device = config.Interface;
        Assert.Equal(PrivateKey, device.PrivateKey?.ToBase64());
        Assert.Equal((ushort)51820, device.ListenPort);
        Assert.Equal(["10.0.0.1/24", "fd00::1/64", "10.0.1.1/24"], device.Addresses.Select(a => a.ToString()));
        Assert.Equal(1420, device.Mtu);
        Assert.Equal(0x1234u, device.FwMark);
        Assert.Equal(HostRole.Gateway, device.Role);
        Assert.Equal(EcnMode.Compatibility, device.DefaultEcnMode);
        Assert.Equal(RouteTable.Off, device.Table);
        // SaveConfig, Table, DNS and the hooks are applied, so they have no note.
        Assert.Empty(config.Notes);
        Assert.False(device.SaveConfig);
        Assert.Equal(["1.1.1.1"], device.Dns);
        Assert.Equal([WgQuickHookStage.PreUp, WgQuickHookStage.PostUp, WgQuickHookStage.PreDown, WgQuickHookStage.PostDown], device.Hooks.Select(h => h.Stage));
        Assert.DoesNotContain(config.Notes, n => n.Message.StartsWith("Table", StringComparison.Ordinal));

        Assert.Equal(2, config.Peers.Count);
        var a = config.Peers[0];
        Assert.Equal(PeerKeyA, a.PublicKey.ToBase64());
        Assert.Equal(Psk, a.PresharedKey!.Value.ToBase64());
        Assert.Equal(["10.0.0.2/32", "fd00::2/128", "192.168.0.0/16"], a.AllowedIps.Select(p => p.ToString()));
        Assert.Equal("192.0.2.1:51820", a.Endpoint.ToString());
        Assert.Equal((ushort)25, a.PersistentKeepaliveSeconds);
        Assert.Equal(EcnMode.Off, a.EcnMode);

        var b = config.Peers[1];
        Assert.Null(b.PresharedKey);
        Assert.Equal("[2001:db8::1]:4500", EndpointText.Format(b.Endpoint));
        Assert.Equal((ushort)0, b.PersistentKeepaliveSeconds);
        Assert.Equal(EcnMode.Compatibility, b.EcnMode); // the [Interface] default
    }

    [Fact]
    public void Keys_and_sections_are_case_insensitive_and_CRLF_is_accepted()
    {
        var config = Parse($"[interface]\r\nprivatekey={PrivateKey}\r\nLISTENPORT = 1\r\n[PEER]\r\npublickey = {PeerKeyA}\r\nallowedips = 10.0.0.0/8\r\n#! ecnmode = Normal\r\n");
        Assert.Equal((ushort)1, config.Interface.ListenPort);
        Assert.Equal(EcnMode.Normal, config.Peers[0].EcnMode);
        Assert.Equal(HostRole.Client, config.Interface.Role);
    }

    /// <summary>
    /// Found in the walk-through: wg(8) takes every space out of a line before it reads it, so a
    /// "[ Peer ]" section works under wg-quick (and wg setconf) but was refused here.
    /// </summary>
    [Fact]
    public void A_peer_section_with_spaces_inside_its_brackets_is_read_as_wg_reads_it()
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n[ Peer ]\nPublicKey = {PeerKeyA}\nAllowedIPs = 10.0.0.0/8\n[\tpeer]\nPublicKey = {PeerKeyB}\n");
        Assert.Equal(2, config.Peers.Count);
        Assert.Equal(IpPrefix.Parse("10.0.0.0/8"), config.Peers[0].AllowedIps[0]);
    }

    [Fact]
    public void A_minimal_file_leaves_the_optional_settings_unset()
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n");
        Assert.Null(config.Interface.ListenPort);
        Assert.Null(config.Interface.Mtu);
        Assert.Null(config.Interface.FwMark);
        Assert.Empty(config.Interface.Addresses);
        Assert.Empty(config.Peers);
        Assert.Empty(config.Notes);
        Assert.Equal(RouteTable.Auto, config.Interface.Table);
    }

    [Fact]
    public void Host_bits_of_AllowedIPs_are_cleared_and_bare_addresses_are_host_prefixes()
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {PeerKeyA}\nAllowedIPs = 10.1.2.3/16, 10.9.9.9, ::1\n");
        Assert.Equal(["10.1.0.0/16", "10.9.9.9/32", "::1/128"], config.Peers[0].AllowedIps.Select(p => p.ToString()));
    }

    [Fact]
    public void Nested_AllowedIPs_on_two_peers_are_allowed_because_routing_is_longest_match()
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {PeerKeyA}\nAllowedIPs = 0.0.0.0/0\n[Peer]\nPublicKey = {PeerKeyB}\nAllowedIPs = 10.0.0.0/24\n");
        Assert.Equal(IpPrefix.Parse("0.0.0.0/0"), config.Peers[0].AllowedIps[0]);
        Assert.Equal(IpPrefix.Parse("10.0.0.0/24"), config.Peers[1].AllowedIps[0]);
    }

    [Theory]
    [InlineData("vpn.example:51820", "[2001:db8::9]:51820")]
    [InlineData("v4first.example:51820", "192.0.2.8:51820")]
    [InlineData("v6only.example:1", "[2001:db8::10]:1")]
    [InlineData("[::1]:65535", "[::1]:65535")]
    [InlineData("127.0.0.1:9", "127.0.0.1:9")]
    [InlineData("[fe80::1%lo]:51820", "[fe80::1%1]:51820")]
    [InlineData("[fe80::1%77]:5", "[fe80::1%77]:5")]
    public void Endpoints_take_the_resolvers_first_address_as_wg_does(string endpoint, string expected)
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {PeerKeyA}\nEndpoint = {endpoint}\n");
        Assert.Equal(expected, EndpointText.Format(config.Peers[0].Endpoint));
    }

    [Fact]
    public void Localhost_resolves_through_the_system_resolver()
    {
        var config = new WgQuickConfigParser().Parse("x.conf", $"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {PeerKeyA}\nEndpoint = localhost:51820\n");
        Assert.True(IPAddress.IsLoopback(config.Peers[0].Endpoint.ToIPEndPoint().Address));
    }

    [Theory]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Firezone]\n", 3, "unknown section '[Firezone]' (expected [Interface] or [Peer])")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peeer]\nPublicKey = {A}\n", 3, "unknown section '[Peeer]' (expected [Interface] or [Peer])")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer 2]\n", 3, "unknown section (expected [Interface] or [Peer])")]
    [InlineData("[ Interface ]\nPrivateKey = {PK}\n", 1, "write [Interface] without spaces inside the brackets: wg-quick does not see it as [Interface] otherwise, and wg refuses its Address, DNS, MTU, Table and hooks")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nColour = blue\n", 3, "unknown key 'Colour' in [Interface]")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nMTU = 1400\n", 5, "'MTU' belongs in [Interface], not [Peer]: move it above the first [Peer]")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nDNS = 10.0.0.53\n", 5, "'DNS' belongs in [Interface], not [Peer]: move it above the first [Peer]")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nPublicKey = {A}\nAllowedIPs = 10.0.0.0/8\n", 3, "'PublicKey' belongs in [Peer], not [Interface] (is a [Peer] line missing above it?)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\n[Interface]\nendpoint = 192.0.2.1:1\n", 6, "'endpoint' belongs in [Peer], not [Interface] (is a [Peer] line missing above it?)")]
    [InlineData("[Interface]\nPrivateKey = notbase64!\n", 2, "PrivateKey is not a base64 WireGuard key (44 characters encoding 32 bytes)")]
    [InlineData("[Interface]\nPrivateKey = AAAA\n", 2, "PrivateKey is not a base64 WireGuard key (44 characters encoding 32 bytes)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}x\n", 4, "PublicKey is not a base64 WireGuard key (44 characters encoding 32 bytes)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nPresharedKey = nope\n", 5, "PresharedKey is not a base64 WireGuard key (44 characters encoding 32 bytes)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nAllowedIPs = 10.0.0.0/33\n", 5, "AllowedIPs: an entry is not a CIDR prefix (address/length)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nAllowedIPs = 10.0.0.0/8, banana\n", 5, "AllowedIPs: an entry is not a CIDR prefix (address/length)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nAllowedIPs = 10.0.0.0/8, , 10.1.0.0/16\n", 5, "AllowedIPs: an empty entry (a comma too many), which wg refuses")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nAllowedIPs = 10.0.0.0/8,\n", 5, "AllowedIPs: an empty entry (a comma too many), which wg refuses")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nAddress = 10.0.0.1/40\n", 3, "Address: an entry has a bad prefix length (0 to 32)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nAddress = fe80::1%eth0/64\n", 3, "Address: an entry is not an address in CIDR notation")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nAddress = 10.0.0.1/24\nAddress = 10.0.0.2/24, 10.0.0.1/24\n", 4, "Address 10.0.0.1/24 is given twice (first on line 3)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nAddress = fd00::1/64, fd00::1/48\n", 3, "Address fd00::1/48 is given twice (first on line 3): an IPv6 address takes one prefix length")]
    [InlineData("\n\n[Peer]\nPublicKey = {A}\n", 1, "no [Interface] section")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nListenPort = 70000\n", 3, "ListenPort is not a port between 0 and 65535 or a UDP service name (/etc/services)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nListenPort = -1\n", 3, "ListenPort is not a port between 0 and 65535 or a UDP service name (/etc/services)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nMTU = 100\n", 3, "MTU is not a number between 576 and 65535")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nMTU = 575\n", 3, "MTU is not a number between 576 and 65535")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nMTU = 65536\n", 3, "MTU is not a number between 576 and 65535")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nMTU = 1279\nAddress = 10.0.0.1/24\nAddress = fd00::1/64\n", 3, "MTU 1279 is below 1280, the IPv6 minimum (RFC 8200 section 5), and the Address on line 5 is IPv6: the kernel disables IPv6 on such a link")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nAddress = 10.0.0.1/24, fd00::1/64\nMTU = 576\n", 4, "MTU 576 is below 1280, the IPv6 minimum (RFC 8200 section 5), and the Address on line 3 is IPv6: the kernel disables IPv6 on such a link")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nMTU = 1200\nAddress = 10.0.0.1/24\n[Peer]\nPublicKey = {A}\nAllowedIPs = 10.0.0.0/24\nAllowedIPs = 10.1.0.0/16, fd00::/64\n", 3, "MTU 1200 is below 1280, the IPv6 minimum (RFC 8200 section 5), and AllowedIPs fd00::/64 on line 8 is IPv6: the kernel disables IPv6 on such a link and refuses a route to it: set MTU = 1280 or more (the outer datagrams are then fragmented on a smaller path) or leave IPv6 out of AllowedIPs (Table = off adds no routes, but IPv6 through the tunnel still does not work)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nTable = 0\n", 3, "Table is not off, auto, main, a table number (1 to 4294967295) or a name from /etc/iproute2/rt_tables")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nTable = 4294967296\n", 3, "Table is not off, auto, main, a table number (1 to 4294967295) or a name from /etc/iproute2/rt_tables")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nTable = -1\n", 3, "Table is not off, auto, main, a table number (1 to 4294967295) or a name from /etc/iproute2/rt_tables")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nTable = 12abc\n", 3, "Table is not off, auto, main, a table number (1 to 4294967295) or a name from /etc/iproute2/rt_tables")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nTable = nosuchtable\n", 3, "Table is not off, auto, main, a table number (1 to 4294967295) or a name from /etc/iproute2/rt_tables")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nTable = Vpn\n", 3, "Table is not off, auto, main, a table number (1 to 4294967295) or a name from /etc/iproute2/rt_tables")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n#!Colour=blue\n", 3, "unknown directive '#! Colour' (known: EcnMode, Role)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n#! Colour = blue   # client or gateway\n", 3, "unknown directive '#! Colour' (known: EcnMode, Role)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n#!Role=router\n", 3, "#! Role is not client or gateway")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n#! Role = router # gateway\n", 3, "#! Role is not client or gateway")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n#! Role   # = gateway\n", 3, "directive is not '#! Key = Value'")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nFwMark = 0xZZ\n", 3, "FwMark is not 'off' or a 32-bit number (decimal, or hex after a lower-case 0x)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nSaveConfig = maybe\n", 3, "SaveConfig is not true or false")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nEndpoint = 192.0.2.1\n", 5, "Endpoint: not an endpoint (host:port)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nEndpoint = 192.0.2.1:0\n", 5, "Endpoint: the port is not a number between 1 and 65535 or a UDP service name (/etc/services)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nEndpoint = 2001:db8::g:51820\n", 5, "Endpoint: not an endpoint (write IPv6 addresses as [address]:port)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nEndpoint = nowhere.invalid:1\n", 5, "Endpoint: cannot resolve the host name")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nPersistentKeepalive = often\n", 5, "PersistentKeepalive is not 'off' or a number of seconds up to 65535")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nAllowedIPs = 10.0.0.0/8\n", 3, "[Peer] has no PublicKey")]
    [InlineData("PrivateKey = {PK}\n", 1, "'PrivateKey' outside a section ([Interface] or [Peer] first)")]
    [InlineData("[Interface]\nPrivateKey\n", 2, "line is not 'Key = Value'")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n#! Colour = blue\n", 3, "unknown directive '#! Colour' (known: EcnMode, Role)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\n#! EcnMode = loud\n", 5, "#! EcnMode is not normal, compatibility or off")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\n#! Role = gateway\n", 5, "#! Role belongs in [Interface]")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n#! Role = router\n", 3, "#! Role is not client or gateway")]
    public void Bad_files_fail_with_file_line_and_problem(string template, int line, string problem)
    {
        string text = template.Replace("{PK}", PrivateKey).Replace("{A}", PeerKeyA).Replace("{B}", PeerKeyB);
        var error = Assert.Throws<ConfigException>(() => Parse(text));
        Assert.Equal($"/etc/wg/wg0.conf:{line}: {problem}", error.Message);
        Assert.Equal(line, error.Line);
        Assert.DoesNotContain(PrivateKey, error.Message);
    }

    /// <summary>
    /// wg(8) reads ListenPort with getaddrinfo(NULL, value, {AI_PASSIVE, SOCK_DGRAM, IPPROTO_UDP})
    /// (config.c, parse_port), so a UDP service name from /etc/services is a port there; it was
    /// refused here ("ListenPort is not a port between 0 and 65535"). Found by the parity review
    /// (`wg setconf` of the file accepts it). The numbers are netbase's /etc/services.
    /// </summary>
    [Theory]
    [InlineData("domain", 53)]
    [InlineData("https", 443)]
    [InlineData("ntp", 123)]
    public void ListenPort_may_be_a_UDP_service_name_as_wg_reads_it(string name, int port)
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\nListenPort = {name}\n");
        Assert.Equal((ushort)port, config.Interface.ListenPort);
    }

    /// <summary>wg resolves an Endpoint with getaddrinfo(host, port, {SOCK_DGRAM, IPPROTO_UDP}): its port may be a UDP service name too.</summary>
    [Theory]
    [InlineData("192.0.2.1:domain", "192.0.2.1:53")]
    [InlineData("[2001:db8::1]:ntp", "[2001:db8::1]:123")]
    [InlineData("vpn.example:https", "[2001:db8::9]:443")]
    public void An_Endpoint_port_may_be_a_UDP_service_name_as_wg_reads_it(string endpoint, string expected)
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {PeerKeyA}\nEndpoint = {endpoint}\n");
        Assert.Equal(expected, EndpointText.Format(config.Peers[0].Endpoint));
    }

    /// <summary>
    /// What wg's getaddrinfo finds no UDP service for stays refused: a TCP-only name ("http"), another
    /// case ("DOMAIN": the lookup is case-sensitive), a hex number.
    /// </summary>
    [Theory]
    [InlineData("[Interface]\nPrivateKey = {PK}\nListenPort = http\n", 3, "ListenPort is not a port between 0 and 65535 or a UDP service name (/etc/services)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nListenPort = DOMAIN\n", 3, "ListenPort is not a port between 0 and 65535 or a UDP service name (/etc/services)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nListenPort = 0x10\n", 3, "ListenPort is not a port between 0 and 65535 or a UDP service name (/etc/services)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nEndpoint = 192.0.2.1:http\n", 5, "Endpoint: the port is not a number between 1 and 65535 or a UDP service name (/etc/services)")]
    public void A_name_that_is_no_UDP_service_is_no_port(string template, int line, string problem) =>
        Bad_files_fail_with_file_line_and_problem(template, line, problem);

    /// <summary>
    /// `AllowedIPs =` with no value: wg(8) refuses the line ("Line unrecognized": config.c's get_value
    /// needs a character after "AllowedIPs="; only `wg set ... allowed-ips ""` takes an empty list),
    /// so wg-quick up and `systemctl reload` fail on it, but it was read here as no allowed IPs.
    /// Found by the parity review (`wg setconf` of the file).
    /// </summary>
    [Theory]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nAllowedIPs =\n", 5)]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nAllowedIPs = 10.0.0.0/8\nAllowedIPs = \t# none\n", 6)]
    public void An_AllowedIPs_line_without_a_value_is_refused_as_wg_refuses_it(string template, int line) =>
        Bad_files_fail_with_file_line_and_problem(template, line, "AllowedIPs has no value, which wg refuses ('Line unrecognized'): leave the line out for a peer without allowed IPs");

    /// <summary>
    /// wg(8) reads a fwmark as hex only after a lower-case "0x" (config.c, parse_fwmark: value[1] ==
    /// 'x'; anything else is decimal, where "0X10" stops at the X), so `FwMark = 0X10` fails wg-quick
    /// and `systemctl reload`; it was read here as 16. Found by the parity review (`wg setconf`).
    /// </summary>
    [Theory]
    [InlineData("0X10")]
    [InlineData("0X")]
    public void A_fwmark_with_an_upper_case_0X_is_refused_as_wg_refuses_it(string value) =>
        Bad_files_fail_with_file_line_and_problem($"[Interface]\nPrivateKey = {{PK}}\nFwMark = {value}\n", 3, "FwMark is not 'off' or a 32-bit number (decimal, or hex after a lower-case 0x)");

    /// <summary>
    /// A key whose last base64 character sets bits past its 32 bytes: wg(8) refuses it ("Key is not
    /// the correct length or format"), so wg-quick and `systemctl reload` fail on the file, but it
    /// was read here as the key with those bits dropped. Found by the parity review (`wg setconf`).
    /// </summary>
    [Theory]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh=\n", 4, "PublicKey")]
    [InlineData("[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBml=\n", 2, "PrivateKey")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nPresharedKey = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVF=\n", 5, "PresharedKey")]
    public void A_key_with_bits_set_past_its_32_bytes_is_refused_as_wg_refuses_it(string template, int line, string key) =>
        Bad_files_fail_with_file_line_and_problem(template, line, $"{key} is not a base64 WireGuard key (44 characters encoding 32 bytes)");

    /// <summary>
    /// wg-quick compares Table with "off" and "auto" after it has turned nocasematch off again (its
    /// keys are case-insensitive, its values not), so `Table = Off` is handed to ip(8) as a table
    /// name, which it refuses ("table id value is invalid"), as it refuses "Main" (iproute2 compares
    /// names with strcmp): wg-quick up fails on the first route. They were read here as off, auto
    /// and main. Found by the parity review (wg-quick's source, `ip route show table Off`).
    /// </summary>
    [Theory]
    [InlineData("Off")]
    [InlineData("AUTO")]
    [InlineData("Main")]
    public void Table_off_auto_and_main_in_another_case_are_refused_as_wg_quick_fails_on_them(string value) =>
        Bad_files_fail_with_file_line_and_problem($"[Interface]\nPrivateKey = {{PK}}\nTable = {value}\n", 3, "Table: write off, auto and main in lower case: wg-quick compares them as written and hands another case to ip(8) as a table name, which it refuses");

    /// <summary>
    /// wg(8) takes only the C locale's white space out of a line (config.c, char_is_space) and
    /// wg-quick trims its values with [[:space:]], so a no-break space pasted from a web page
    /// (`PublicKey\u00a0= ...`, `ListenPort = 51820\u00a0`) makes wg refuse the line ("Line
    /// unrecognized", or a bad value) and wg-quick up and `systemctl reload` fail; .NET's Trim took
    /// it away here and the file started. Found by the parity review (`wg setconf`).
    /// </summary>
    [Theory]
    [InlineData("[Interface]\nPrivateKey = {PK}\nListenPort = 51820\u00a0\n", 3, "the line holds a Unicode space (U+00A0), which wg and wg-quick do not read as a space: write an ordinary space or tab")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey\u00a0= {A}\n", 4, "the line holds a Unicode space (U+00A0), which wg and wg-quick do not read as a space: write an ordinary space or tab")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n\u2003[Peer]\nPublicKey = {A}\n", 3, "the line holds a Unicode space (U+2003), which wg and wg-quick do not read as a space: write an ordinary space or tab")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nAddress = 10.0.0.1/24\u00a0\n", 3, "Address: an entry has a bad prefix length (0 to 32)")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nMTU = 1420\u00a0\n", 3, "MTU is not a number between 576 and 65535")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nSaveConfig = true\u00a0\n", 3, "SaveConfig is not true or false")]
    public void A_Unicode_space_is_no_space_to_wg_or_wg_quick(string template, int line, string problem) =>
        Bad_files_fail_with_file_line_and_problem(template, line, problem);

    /// <summary>A hook keeps a Unicode space at its end, as wg-quick's value does (it trims [[:space:]] only).</summary>
    [Fact]
    public void A_hook_keeps_a_Unicode_space_as_wg_quick_keeps_it()
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\nPostUp = echo up\u00a0\n");
        Assert.Equal("echo up\u00a0", config.Interface.Hooks[0].Command);
    }

    /// <summary>
    /// `MTU =` and `Table =` with no value: wg-quick keeps the empty value and tests it with -n, so
    /// the interface gets the automatic MTU and the routes the default table handling (`auto`),
    /// also when an earlier line gave one (the later value counts). Both were refused here, so a
    /// file from a template with an empty setting started under wg-quick and not as the service.
    /// Found by the parity review (wg-quick's source: `[[ -n $MTU ]]`, `[[ -z $TABLE || $TABLE == auto ]]`).
    /// </summary>
    [Fact]
    public void MTU_and_Table_without_a_value_are_left_to_their_defaults_as_wg_quick_leaves_them()
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\nMTU =\nTable = # none\n");
        Assert.Null(config.Interface.Mtu);
        Assert.Equal(RouteTable.Auto, config.Interface.Table);

        var emptied = Parse($"[Interface]\nPrivateKey = {PrivateKey}\nMTU = 1400\nTable = off\nMTU =\nTable =\n");
        Assert.Null(emptied.Interface.Mtu);
        Assert.Equal(RouteTable.Auto, emptied.Interface.Table);
    }

    /// <summary>
    /// An IPv6 endpoint without brackets: wg(8) takes the port after the last colon and hands the
    /// rest to getaddrinfo (config.c, parse_endpoint), so `Endpoint = 2001:db8::1:51820` is
    /// [2001:db8::1]:51820 under wg-quick; it was refused here. Read as wg reads it, with a note,
    /// since the form is ambiguous (a forgotten port reads the last group as one). Found by the
    /// parity review (`wg setconf` of the file, then `wg show endpoints`).
    /// </summary>
    [Theory]
    [InlineData("2001:db8::1:51820", "[2001:db8::1]:51820")]
    [InlineData("::1:5", "[::1]:5")]
    [InlineData("fe80::1%lo:5", "[fe80::1%1]:5")]
    public void An_IPv6_endpoint_without_brackets_is_read_as_wg_reads_it_with_a_note(string endpoint, string expected)
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {PeerKeyA}\nEndpoint = {endpoint}\n");
        Assert.Equal(expected, EndpointText.Format(config.Peers[0].Endpoint));
        var note = Assert.Single(config.Notes);
        Assert.Equal(5, note.Line);
        Assert.Equal("Endpoint: an IPv6 address without brackets, read as wg reads it, with the port after the last colon: write it as [address]:port", note.Message);
    }

    /// <summary>
    /// wg(8) compares key names with strncasecmp and wg-quick with bash's nocasematch under the C
    /// locale: ASCII letters only. .NET's ToLowerInvariant also folds the Kelvin sign (U+212A) to
    /// 'k', so `Public\u212Aey = ...` was read as PublicKey where wg refuses the line ("Line
    /// unrecognized"). Found by the parity review. The dotless i (U+0131) in a section and the long
    /// s (U+017F) in a value were refused already (OrdinalIgnoreCase does not fold them); kept as guards.
    /// </summary>
    [Theory]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublic\u212Aey = {A}\n", 4, "line in [Peer] is not 'Key = Value' with a known key")]
    [InlineData("[Interface]\nPrivate\u212Aey = {PK}\n", 2, "line in [Interface] is not 'Key = Value' with a known key")]
    [InlineData("[Interface]\nPrivateKey = {PK}\n[Peer]\nPublicKey = {A}\nPersistent\u212Aeepalive = 25\n", 5, "line in [Peer] is not 'Key = Value' with a known key")]
    [InlineData("[\u0131nterface]\nPrivateKey = {PK}\n", 1, "unknown section (expected [Interface] or [Peer])")]
    [InlineData("[Interface]\nPrivateKey = {PK}\nSaveConfig = fal\u017Fe\n", 3, "SaveConfig is not true or false")]
    public void Key_names_match_without_case_in_ASCII_only_as_wg_matches_them(string template, int line, string problem) =>
        Bad_files_fail_with_file_line_and_problem(template, line, problem);

    /// <summary>
    /// An Endpoint's host goes to getaddrinfo in wg (config.c, parse_endpoint), which reads an IPv4
    /// literal as inet_aton does (octal, hex, missing parts), unlike AllowedIPs (inet_pton): the
    /// expected values are what `wg show endpoints` printed after `wg setconf` of the same lines
    /// against wireguard-go. Passed before; pins the README's corrected sentence.
    /// </summary>
    [Theory]
    [InlineData("010.0.0.1:5", "8.0.0.1:5")]
    [InlineData("1.2.3:5", "1.2.0.3:5")]
    [InlineData("0x7f.1:5", "127.0.0.1:5")]
    [InlineData("2130706433:5", "127.0.0.1:5")]
    public void Endpoint_addresses_are_read_as_getaddrinfo_reads_them_in_wg(string endpoint, string expected)
    {
        var config = new WgQuickConfigParser().Parse("x.conf", $"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {PeerKeyA}\nEndpoint = {endpoint}\n");
        Assert.Equal(expected, EndpointText.Format(config.Peers[0].Endpoint));
    }

    /// <summary>
    /// wg(8) warns of an AllowedIPs entry with host bits set ("Warning: AllowedIP has nonzero host
    /// part", config.c validate_netmask): often a host address written with its subnet's length
    /// (10.1.2.3/16 for 10.1.2.3/32), which routes the whole subnet to the peer. It was cleared here
    /// without a word; now with a note, as wg-quick up shows wg's warning. Found by the parity review.
    /// </summary>
    [Fact]
    public void AllowedIPs_with_host_bits_set_get_a_note_as_wg_warns_of_them()
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {PeerKeyA}\nAllowedIPs = 10.1.2.3/16, 10.9.0.0/16\nAllowedIPs = fd00::1/64, 10.8.8.8\n");
        Assert.Equal(["10.1.0.0/16", "10.9.0.0/16", "fd00::/64", "10.8.8.8/32"], config.Peers[0].AllowedIps.Select(p => p.ToString()));
        Assert.Equal(
            [
                new ConfigNote(5, "AllowedIPs 10.1.2.3/16 has host bits set: read as 10.1.0.0/16, as wg reads it (it warns of a nonzero host part)"),
                new ConfigNote(6, "AllowedIPs fd00::1/64 has host bits set: read as fd00::/64, as wg reads it (it warns of a nonzero host part)"),
            ],
            config.Notes);
    }

    /// <summary>
    /// An interface name as an IPv6 endpoint's zone: glibc's getaddrinfo, which wg(8) resolves an
    /// Endpoint with, takes a name only for a link-local address (or a node- or link-local
    /// multicast one; inet6_scopeid_pton), a number for any, so `Endpoint = [::1%lo]:5` fails
    /// wg-quick and `systemctl reload` ("Name or service not known") while .NET's parser took it.
    /// Found by the parity review (`wg setconf` and `wg show endpoints` against wireguard-go).
    /// </summary>
    [Theory]
    [InlineData("[::1%lo]:5")]
    [InlineData("[2001:db8::1%lo]:51820")]
    [InlineData("[ff05::1%lo]:5")]
    [InlineData("[::ffff:192.0.2.1%lo]:5")]
    public void A_zone_name_on_an_address_that_is_not_link_local_is_refused_as_wg_refuses_it(string endpoint) =>
        Bad_files_fail_with_file_line_and_problem($"[Interface]\nPrivateKey = {{PK}}\n[Peer]\nPublicKey = {{A}}\nEndpoint = {endpoint}\n", 5,
            "Endpoint: an interface name as the zone goes only with a link-local address, as wg's getaddrinfo reads it: leave it out, or give the interface's number");

    [Theory]
    [InlineData("[ff02::1%lo]:5", "[ff02::1%1]:5")]
    [InlineData("[ff01::1%lo]:5", "[ff01::1%1]:5")]
    [InlineData("[2001:db8::1%1]:5", "[2001:db8::1%1]:5")]
    public void A_zone_name_goes_with_link_local_and_a_zone_number_with_any_address_as_in_wg(string endpoint, string expected)
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n[Peer]\nPublicKey = {PeerKeyA}\nEndpoint = {endpoint}\n");
        Assert.Equal(expected, EndpointText.Format(config.Peers[0].Endpoint));
    }

    /// <summary>
    /// As many different peers as wireguard-go allows (device.MaxPeers, 65,536), the UAPI's bound
    /// too; one more is refused at its [Peer] line, where wg-quick's wg setconf fails against
    /// wireguard-go. A repeated PublicKey is the same peer and does not count. Before, a file of
    /// 70,000 peers started with all of them (found by the security review).
    /// </summary>
    [Fact]
    public void More_different_peers_than_wireguard_go_allows_are_refused_at_the_first_one_too_many()
    {
        const int Max = Firezone.Actors.Host.Control.DeviceLimits.MaxPeers;
        var text = new System.Text.StringBuilder($"[Interface]\nPrivateKey = {PrivateKey}\n");
        var key = new byte[32];
        for (int i = 0; i < Max; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(key, i + 1);
            text.Append("[Peer]\nPublicKey = ").Append(Convert.ToBase64String(key)).Append('\n');
        }
        text.Append($"[Peer]\nPublicKey = {Convert.ToBase64String(key)}\n"); // the last one again: still Max peers
        Assert.Equal(Max, Parse(text.ToString()).Peers.Count);

        int line = 3 + 2 * (Max + 1);
        text.Append($"[Peer]\nPublicKey = {PeerKeyA}\n");
        var error = Assert.Throws<ConfigException>(() => Parse(text.ToString()));
        Assert.Equal($"/etc/wg/wg0.conf:{line}: more than 65536 peers (wireguard-go's limit): this is the 65537th different PublicKey", error.Message);
    }

    /// <summary>
    /// A byte order mark (Windows editors write one) is read past, but wg-quick and wg refuse such a
    /// file ("Line unrecognized: `[Interface]'" with the mark invisible), so the service would start
    /// and every `systemctl reload` (wg syncconf of the same file) fail: the log says so at start.
    /// </summary>
    [Fact]
    public void A_byte_order_mark_is_read_past_with_a_note_that_wg_refuses_it()
    {
        string path = Path.Combine(Path.GetTempPath(), "fz-bom-" + Guid.NewGuid().ToString("N")[..8] + ".conf");
        try
        {
            string text = $"[Interface]\r\nPrivateKey = {PrivateKey}\r\n[Peer]\r\nPublicKey = {PeerKeyA}\r\n";
            File.WriteAllText(path, text, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: true));
            var config = new WgQuickConfigParser().ParseFile(path);
            Assert.Equal(PeerKeyA, Assert.Single(config.Peers).PublicKey.ToBase64());
            var note = Assert.Single(config.Notes);
            Assert.Equal(1, note.Line);
            Assert.Equal("the file starts with a UTF-8 byte order mark, which wg-quick and wg refuse (systemctl reload fails on it): save it without one", note.Message);

            File.WriteAllText(path, text, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            Assert.Empty(new WgQuickConfigParser().ParseFile(path).Notes);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// A line that is not UTF-8 (a Latin-1 'é', as older editors save it) was read with U+FFFD in
    /// place of the byte, without a word: wg-quick passes the byte on unchanged, so a hook such as
    /// <c>PostUp = printf "caf\xe9" > FILE</c> wrote EF BF BD under this daemon where it wrote E9
    /// under wg-quick (the wgquick review, 2026-11-29). Such a byte in a value is refused, naming
    /// the line; in a comment, which neither reads, it is no matter.
    /// </summary>
    [Fact]
    public void A_value_that_is_not_utf8_is_refused_naming_the_line_and_a_comment_may_be_anything()
    {
        string path = Path.Combine(Path.GetTempPath(), "fz-latin1-" + Guid.NewGuid().ToString("N")[..8] + ".conf");
        try
        {
            var latin1 = System.Text.Encoding.Latin1;
            File.WriteAllBytes(path, latin1.GetBytes($"[Interface]\n# caf\u00e9\nPrivateKey = {PrivateKey} # cl\u00e9\nPostUp = printf \"caf\u00e9\" > /tmp/x\n"));
            var error = Assert.Throws<ConfigException>(() => new WgQuickConfigParser().ParseFile(path));
            Assert.Equal(4, error.Line);
            Assert.Equal("the line is not UTF-8 (byte 0xE9 at column 21), which is how this daemon reads the file: wg-quick passes such a byte on as it is, here it would become U+FFFD: save the file as UTF-8", error.Problem);

            File.WriteAllBytes(path, latin1.GetBytes($"[Interface]\n# caf\u00e9\nPrivateKey = {PrivateKey} # cl\u00e9\n"));
            Assert.Equal(PrivateKey, new WgQuickConfigParser().ParseFile(path).Interface.PrivateKey?.ToBase64());

            File.WriteAllText(path, $"[Interface]\nPrivateKey = {PrivateKey}\nPostUp = printf \"caf\u00e9\" > /tmp/x\n");
            Assert.Equal("printf \"caf\u00e9\" > /tmp/x", Assert.Single(new WgQuickConfigParser().ParseFile(path).Interface.Hooks).Command);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void An_unreadable_file_is_reported_by_name()
    {
        string path = Path.Combine(Path.GetTempPath(), "fz-missing-" + Guid.NewGuid().ToString("N") + ".conf");
        var error = Assert.Throws<ConfigException>(() => new WgQuickConfigParser().ParseFile(path));
        Assert.StartsWith($"{path}: cannot read the file", error.Message);
    }

    [Fact]
    public void Ordinary_comments_that_start_with_a_bang_but_no_space_are_comments()
    {
        var config = Parse($"[Interface]\n#!important: keep this key safe\nPrivateKey = {PrivateKey}\n");
        Assert.Equal(PrivateKey, config.Interface.PrivateKey?.ToBase64());
    }
    /// <summary>
    /// wg setconf takes a file without PrivateKey (the interface has no key until wg set gives
    /// it one, as wg-quick(8)'s <c>PostUp = wg set %i private-key ...</c> does); so does the parser,
    /// and a [Peer] is kept whatever its key (no own key to compare with).
    /// </summary>
    [Fact]
    public void A_file_without_PrivateKey_is_read_with_no_key()
    {
        var config = Parse($"[Interface]\nListenPort = 1\n[Peer]\nPublicKey = {Curve25519.PublicKeyOf(TestKeys.New()).ToBase64()}\n");
        Assert.Null(config.Interface.PrivateKey);
        Assert.Single(config.Peers);
        Assert.Empty(config.Notes);
    }

    /// <summary>Every substring of 8 characters of a secret: none may appear in an error.</summary>
    private static void AssertLeaksNothingOf(string secret, string message)
    {
        for (int i = 0; i + 8 <= secret.Length; i++)
        {
            Assert.DoesNotContain(secret.Substring(i, 8), message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("[Interface]\nPrivateKey: {K}\n", 2)]
    [InlineData("[Interface]\nPrivateKey {K}\n", 2)]
    [InlineData("[Interface]\nPrivateKey  :  {K}\n", 2)]
    [InlineData("[Interface]\nPrivate-Key = {K}\n", 2)] // "Private Key" is no mistake: wg(8) takes spaces out of a line
    [InlineData("[Interface]\nPrivateKey = {K} x\n", 2)]
    [InlineData("[Interface]\n{K}\n", 2)]
    [InlineData("[Interface]\nPrivateKey = {K} {K}\n", 2)]
    [InlineData("{K}\n", 1)]
    [InlineData("[{K}]\n", 1)]
    [InlineData("[Interface]\nPrivateKey = {P}\n[Peer]\nPublicKey = {A}\nPresharedKey: {K}\n", 5)]
    [InlineData("[Interface]\nPrivateKey = {P}\n[Peer]\nPublicKey = {A}\nPresharedKey {K}\n", 5)]
    [InlineData("[Interface]\nPrivateKey = {P}\n[Peer]\nPublicKey = {A}\nAllowedIPs = {K}\n", 5)]
    [InlineData("[Interface]\nPrivateKey = {P}\n[Peer]\nPublicKey = {A}\nEndpoint = {K}\n", 5)]
    [InlineData("[Interface]\nPrivateKey = {P}\nListenPort = {K}\n", 3)]
    [InlineData("[Interface]\nPrivateKey = {P}\nAddress = {K}\n", 3)]
    [InlineData("[Interface]\nPrivateKey = {P}\n#! {K}\n", 3)]
    [InlineData("[Interface]\nPrivateKey = {P}\n#! Role = {K}\n", 3)]
    [InlineData("[Interface]\nPrivateKey = {P}\n#!Role={K}\n", 3)]
    [InlineData("[Interface]\nPrivateKey = {P}\n#!Role = {K} # comment\n", 3)]
    public void Mistyped_secret_lines_never_quote_the_secret(string template, int line)
    {
        // A secret ending in base64 padding: the '=' is where a naive parser splits "Key = Value".
        const string Secret = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
        string text = template.Replace("{K}", Secret).Replace("{P}", PrivateKey).Replace("{A}", PeerKeyA);
        var error = Assert.Throws<ConfigException>(() => Parse(text));
        Assert.StartsWith($"/etc/wg/wg0.conf:{line}: ", error.Message);
        AssertLeaksNothingOf(Secret, error.Message);
        AssertLeaksNothingOf(PrivateKey, error.Message);
    }

    [Fact]
    public void A_mistyped_key_name_that_is_a_plain_word_is_still_named()
    {
        var error = Assert.Throws<ConfigException>(() => Parse($"[Interface]\nPrivateKye = {PrivateKey}\n"));
        Assert.Equal("/etc/wg/wg0.conf:2: unknown key 'PrivateKye' in [Interface]", error.Message);
    }

    [Fact]
    public void The_README_directive_example_parses_with_its_trailing_comments()
    {
        // README, "Engine options", verbatim.
        var config = Parse($"""
            [Interface]
            PrivateKey = {PrivateKey}
            #! Role = gateway            # client (default) or gateway
            #! EcnMode = normal          # default for every peer: normal, compatibility or off

            [Peer]
            PublicKey = {PeerKeyA}
            #! EcnMode = compatibility   # this peer only (RFC 6040 section 4.1 modes)
            """);
        Assert.Equal(HostRole.Gateway, config.Interface.Role);
        Assert.Equal(EcnMode.Normal, config.Interface.DefaultEcnMode);
        Assert.Equal(EcnMode.Compatibility, config.Peers[0].EcnMode);
    }

    [Theory]
    [InlineData("#!Role=gateway")]
    [InlineData("#!Role = gateway")]
    [InlineData("#!  role=GATEWAY#note")]
    [InlineData("\t#!\tRole\t=\tgateway\t# tabs")]
    public void A_directive_needs_no_space_after_the_bang(string directive)
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n{directive}\n[Peer]\nPublicKey = {PeerKeyA}\n#!EcnMode=off\n");
        Assert.Equal(HostRole.Gateway, config.Interface.Role);
        Assert.Equal(EcnMode.Off, config.Peers[0].EcnMode);
    }

    [Fact]
    public void A_peer_with_the_interfaces_own_public_key_is_left_out_with_its_allowed_ips_and_a_note()
    {
        Assert.True(Firezone.Actors.Engine.WireGuard.WireGuardKey.TryParseBase64(PrivateKey, out var privateKey));
        string own = Firezone.Actors.Engine.Crypto.Curve25519.PublicKeyOf(privateKey).ToBase64();
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n\n[Peer]\nPublicKey = {own}\nAllowedIPs = 10.100.0.2/32\n\n[Peer]\nPublicKey = {PeerKeyA}\nAllowedIPs = 10.100.0.3/32\n");
        // No peer, so no route for 10.100.0.2 (wg-quick routes what wg setconf took).
        Assert.Equal(PeerKeyA, Assert.Single(config.Peers).PublicKey.ToBase64());
        var note = Assert.Single(config.Notes);
        Assert.Equal(4, note.Line);
        Assert.Contains("own PublicKey", note.Message);
    }

    [Theory]
    [InlineData(null, RouteTableMode.Auto, "auto")]
    [InlineData("auto", RouteTableMode.Auto, "auto")]
    [InlineData("off", RouteTableMode.Off, "off")]
    [InlineData("main", RouteTableMode.Named, "main")]
    [InlineData("local", RouteTableMode.Named, "local")]
    [InlineData("1", RouteTableMode.Named, "1")]
    [InlineData("1234", RouteTableMode.Named, "1234")]
    [InlineData("4294967295", RouteTableMode.Named, "4294967295")]
    [InlineData("vpn", RouteTableMode.Named, "vpn")]
    [InlineData("vpn   # the VPN table", RouteTableMode.Named, "vpn")]
    public void Table_is_off_auto_or_a_routing_table(string? value, RouteTableMode mode, string name)
    {
        string table = value is null ? "" : $"Table = {value}\n";
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\n{table}");
        Assert.Equal(mode, config.Interface.Table.Mode);
        Assert.Equal(name, config.Interface.Table.Name);
        Assert.Empty(config.Notes);
    }

    [Fact]
    public void Table_names_are_read_from_rt_tables_files()
    {
        string directory = Path.Combine(Path.GetTempPath(), "fz-rt-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(directory, "rt_tables.d"));
        try
        {
            File.WriteAllText(Path.Combine(directory, "rt_tables"), "#\n# reserved values\n#\n255\tlocal\n254\tmain\n200 vpn # ours\n\n");
            File.WriteAllText(Path.Combine(directory, "rt_tables.d", "extra.conf"), "300\tbackup\n");
            File.WriteAllText(Path.Combine(directory, "rt_tables.d", "ignored.txt"), "400\tignored\n");
            var names = RouteTableNames.Load([directory, Path.Combine(directory, "missing")]);
            Assert.True(names.Contains("vpn"));
            Assert.True(names.Contains("backup"));
            Assert.True(names.Contains("default")); // built into ip(8)
            Assert.False(names.Contains("ignored"));
            Assert.False(names.Contains("reserved"));
            Assert.False(names.Contains("Vpn"));
            var config = new WgQuickConfigParser(new FakeResolver(), names).Parse("x.conf", $"[Interface]\nPrivateKey = {PrivateKey}\nTable = backup\n");
            Assert.Equal(RouteTable.Named("backup"), config.Interface.Table);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData(576)]
    [InlineData(1000)]
    [InlineData(1279)]
    public void An_MTU_below_1280_is_accepted_on_an_IPv4_only_interface(int mtu)
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\nAddress = 10.0.0.1/24\nMTU = {mtu}\n[Peer]\nPublicKey = {PeerKeyA}\nAllowedIPs = 10.0.0.0/24\n");
        Assert.Equal(mtu, config.Interface.Mtu);
    }

    [Fact]
    public void An_IPv6_address_is_fine_from_MTU_1280()
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\nAddress = fd00::1/64\nMTU = 1280\n");
        Assert.Equal(1280, config.Interface.Mtu);
    }

    /// <summary>
    /// Below 1280 an IPv6 allowed IP is no mistake where no route is added for it (Table = off):
    /// the file's author routes by other means, and IPv4 goes through.
    /// </summary>
    [Fact]
    public void An_IPv6_allowed_IP_below_MTU_1280_is_fine_with_Table_off()
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\nMTU = 1200\nTable = off\n[Peer]\nPublicKey = {PeerKeyA}\nAllowedIPs = 10.0.0.0/24, fd00::/64\n");
        Assert.Equal(1200, config.Interface.Mtu);
    }

    /// <summary>The kernel keeps an IPv4 address once per prefix length (inet_insert_ifa), so ip address add takes both.</summary>
    [Fact]
    public void An_IPv4_address_may_be_given_again_with_another_prefix_length()
    {
        var config = Parse($"[Interface]\nPrivateKey = {PrivateKey}\nAddress = 10.0.0.1/24\nAddress = 10.0.0.1/16\n");
        Assert.Equal(["10.0.0.1/24", "10.0.0.1/16"], config.Interface.Addresses.Select(a => a.ToString()));
    }
}
