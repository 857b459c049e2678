using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Differential test against Debian's wireguard-go (0.0.20220316): the same random set request goes
/// to both servers; both must answer the same errno, and after a request both accepted, both must
/// report the same configuration. Where the two differ on purpose the generator or the comparison
/// leaves the case out, and says why.
/// </summary>
public sealed class UapiWireGuardGoComparisonTests(UapiServerPair servers) : IClassFixture<UapiServerPair>
{
    private readonly UapiServerFixture _ours = servers.Ours;
    private readonly WireGuardGoUapi _theirs = servers.Theirs;

    private static readonly string ResetRequest = "set=1\nprivate_key=" + new string('0', 64) + "\nfwmark=0\nreplace_peers=true\n\n";

    /// <summary>Sends <paramref name="request"/> to both servers, reads each one's configuration after it, then resets both.</summary>
    private (string Ours, string Theirs, string OurState, string TheirState) ExchangeWithBoth(string request, bool shutdownWrite = false)
    {
        string ours = UapiRawClient.Exchange(_ours.SocketPath, request, shutdownWrite: shutdownWrite);
        string theirs = UapiRawClient.Exchange(_theirs.SocketPath, request, shutdownWrite: shutdownWrite);
        string ourState = Normalize(UapiRawClient.Exchange(_ours.SocketPath, "get=1\n\n"));
        string theirState = Normalize(UapiRawClient.Exchange(_theirs.SocketPath, "get=1\n\n"));
        UapiRawClient.Exchange(_ours.SocketPath, ResetRequest);
        UapiRawClient.Exchange(_theirs.SocketPath, ResetRequest);
        return (ours, theirs, ourState, theirState);
    }

    // A fixed seed: CI runs the same cases each time (a divergence from an outside tool found at
    // random would fail one run in many and lose it). New seeds are explored by hand: drop Replay.
    [Property(MaxTest = 400, Arbitrary = [typeof(UapiGenerators)], Replay = "(1609125011,1442695041)")]
    public Property A_set_request_gets_the_errno_and_configuration_wireguard_go_gives_it(UapiLines request)
    {
        var (ours, theirs, ourState, theirState) = ExchangeWithBoth(request.Request);
        // Go 1.19's strconv.Atoi, which netip.ParsePrefix used then, takes a sign ("10.0.0.0/+8");
        // later Go versions refuse it, as we do.
        bool sameErrno = UapiRawClient.Errno(ours) == UapiRawClient.Errno(theirs) || request.Request.Contains("/+", StringComparison.Ordinal);
        // After a refusal wireguard-go keeps what it applied before the bad line; we keep nothing.
        // An all-zero public key is wireguard-go's own while it has never had a private key, so it
        // ignores such a peer; we add it (no handshake can complete with it either way).
        bool sameState = UapiRawClient.Errno(ours) != 0 || ourState == theirState
            || request.Lines.Contains("public_key=" + new string('0', 64));
        return (sameErrno && sameState).Label($"ours {ours.Trim()} / wireguard-go {theirs.Trim()}\nours:\n{ourState}\nwireguard-go:\n{theirState}");
    }

    /// <summary>
    /// Long lines: wireguard-go reads lines of up to 64 KiB like any other and fails a longer one
    /// with EIO. (Ours stopped at 4 KiB with EPROTO.)
    /// </summary>
    [Theory]
    [InlineData(5000)]
    [InlineData(65000)]
    [InlineData(65535)]
    [InlineData(65536)]
    [InlineData(65537)]
    [InlineData(70000)]
    [InlineData(300000)]
    public void A_long_line_gets_the_errno_wireguard_go_gives_it(int length)
    {
        string request = "set=1\nlisten_port=" + new string('1', length - "listen_port=".Length) + "\n\n";
        int? ours = UapiRawClient.Errno(UapiRawClient.Exchange(_ours.SocketPath, request));
        int? theirs = UapiRawClient.Errno(UapiRawClient.Exchange(_theirs.SocketPath, request));
        Assert.Equal(theirs, ours);
        Assert.Equal(length >= UapiLineReader.MaxLineLength ? -UapiErrno.EIO : -UapiErrno.EINVAL, ours);
    }

    /// <summary>
    /// CRLF line ends in a set's body: wireguard-go's bufio.Scanner drops the '\r' (a "\r" line ends
    /// the request); its operation line must end in a bare '\n'. (Ours refused "listen_port=5\r".)
    /// </summary>
    [Theory]
    [InlineData("set=1\nlisten_port=5\r\nfwmark=3\r\n\r\n")]
    [InlineData("set=1\nfwmark=5\r\n\n")]
    [InlineData("set=1\nfwmark=5\r\r\n\n")]
    [InlineData("set=1\r\nfwmark=5\n\n")]
    public void CRLF_is_read_as_wireguard_go_reads_it(string request)
    {
        var (ours, theirs, ourState, theirState) = ExchangeWithBoth(request, shutdownWrite: true);
        // wireguard-go closes on an unknown operation without a word; we answer EINVAL first.
        Assert.Equal(UapiRawClient.Errno(theirs) ?? -UapiErrno.EINVAL, UapiRawClient.Errno(ours));
        Assert.Equal(theirState, ourState);
    }

    /// <summary>
    /// Bytes that are not ASCII in a set's body, UTF-8 or not (the request is written as Latin-1, one
    /// byte a character): wireguard-go reads them as bytes and refuses each such line as any other
    /// it cannot parse. Ours reads UTF-8 (a reply may carry a path), and must still refuse them, also
    /// where .NET trims Unicode spaces (U+00A0, U+0085) or resolves a zone's interface name.
    /// </summary>
    [Theory]
    [InlineData("set=1\nlisten_port=5\u00c3\u00a9\n\n")]
    [InlineData("set=1\nlisten_port=5\u00e9\n\n")]
    [InlineData("set=1\nlisten_port=\u00c2\u00a05\n\n")]
    [InlineData("set=1\nfwmark=5\u00c2\u0085\n\n")]
    [InlineData("set=1\n\u00c3\u00a9=1\n\n")]
    [InlineData("set=1\nlisten_port\u00ff\u00fe=5\n\n")]
    [InlineData("set=1\nreplace_peers=true\u00ef\u00bb\u00bf\n\n")]
    [InlineData("set=1\u00c3\u00a9\n\n")]
    [InlineData("set=1\npublic_key=0100000000000000000000000000000000000000000000000000000000000000\nendpoint=[fe80::1%\u00c3\u00a9]:51820\n\n")]
    [InlineData("set=1\npublic_key=0100000000000000000000000000000000000000000000000000000000000000\nallowed_ip=10.0.0.0/\u00d9\u00a8\n\n")]
    public void Bytes_that_are_not_ASCII_are_refused_as_wireguard_go_refuses_them(string request)
    {
        var (ours, theirs, ourState, theirState) = ExchangeWithBoth(request, shutdownWrite: true);
        // wireguard-go closes on an unknown operation without a word; we answer EINVAL first.
        Assert.Equal(UapiRawClient.Errno(theirs) ?? -UapiErrno.EINVAL, UapiRawClient.Errno(ours));
        Assert.NotEqual(0, UapiRawClient.Errno(ours));
        // wireguard-go keeps the peer a line before the bad one; ours applies nothing.
        if (!request.Contains("public_key=", StringComparison.Ordinal))
        {
            Assert.Equal(theirState, ourState);
        }
    }

    /// <summary>
    /// <c>endpoint=[::]:0</c> (what <c>wg set IF peer K endpoint [::]:0</c> sends) is an endpoint to
    /// wireguard-go, as to the kernel: get reports it, on a new peer and in place of an earlier one. Ours
    /// took it for "no endpoint", whose bits it shares: a new peer got none and an existing one kept
    /// the endpoint it had (found by a side-by-side review of wg(8) against both daemons).
    /// </summary>
    [Theory]
    [InlineData("")]
    [InlineData("endpoint=192.0.2.1:51820\n")]
    [InlineData("endpoint=[2001:db8::1]:4500\n")]
    public void An_endpoint_of_the_unspecified_IPv6_address_on_port_zero_is_kept_as_wireguard_go_keeps_it(string before)
    {
        string key = "public_key=" + UapiGenerators.PeerKeys[0] + "\n";
        try
        {
            foreach (string request in (string[])["set=1\n" + key + before + "\n", "set=1\n" + key + "endpoint=[::]:0\n\n"])
            {
                Assert.Equal("errno=0\n\n", UapiRawClient.Exchange(_theirs.SocketPath, request));
                Assert.Equal("errno=0\n\n", UapiRawClient.Exchange(_ours.SocketPath, request));
            }
            string theirState = Normalize(UapiRawClient.Exchange(_theirs.SocketPath, "get=1\n\n"));
            Assert.Contains("endpoint=[::]:0", theirState, StringComparison.Ordinal);
            Assert.Equal(theirState, Normalize(UapiRawClient.Exchange(_ours.SocketPath, "get=1\n\n")));
        }
        finally
        {
            UapiRawClient.Exchange(_ours.SocketPath, ResetRequest);
            UapiRawClient.Exchange(_theirs.SocketPath, ResetRequest);
        }
    }

    /// <summary>
    /// IPv6 addresses whose text .NET writes with a dotted IPv4 tail where Go's netip (wireguard-go's
    /// get) writes hex: an IPv4-compatible address (<c>::1.2.3.4</c>, Go <c>::102:304</c>) and
    /// <c>::ffff:0:a.b.c.d</c>; and the low IPv4-mapped ones, which Go writes dotted and .NET in hex
    /// (<c>::ffff:0.0.0.0</c>, .NET <c>::ffff:0:0</c>). The get's <c>allowed_ip</c> and
    /// <c>endpoint</c> lines must read as wireguard-go's (found by a side-by-side review of the
    /// raw get replies; wg(8) re-formats them, so only other UAPI clients saw it).
    /// </summary>
    [Theory]
    [InlineData("::ffff:0.0.0.0", 96)]
    [InlineData("::ffff:0.0.0.1", 128)]
    [InlineData("::ffff:0.1.0.0", 128)]
    [InlineData("::ffff:1.2.3.4", 128)]
    [InlineData("::1.2.3.4", 128)]
    [InlineData("::0.0.0.1", 128)]
    [InlineData("::0.1.0.0", 128)]
    [InlineData("::ffff:0:102:304", 128)]
    [InlineData("64:ff9b::1.2.3.4", 128)]
    [InlineData("2001:db8:0:1:1:1:1:1", 128)]
    [InlineData("2001:db8::1:0:0:1", 128)]
    [InlineData("fd00::", 8)]
    [InlineData("::", 0)]
    public void IPv6_addresses_in_a_get_are_written_as_wireguard_go_writes_them(string address, int length)
    {
        // An IPv4-mapped endpoint is taken as its IPv4 address on purpose (README): compared as allowed IPs only.
        bool mapped = address.StartsWith("::ffff:", StringComparison.Ordinal) && address.Contains('.', StringComparison.Ordinal);
        string request = "set=1\npublic_key=" + UapiGenerators.PeerKeys[0] + "\nallowed_ip=" + address + "/" + length + "\n"
            + (mapped ? "" : "endpoint=[" + address + "]:5\n") + "\n";
        try
        {
            Assert.Equal("errno=0\n\n", UapiRawClient.Exchange(_theirs.SocketPath, request));
            Assert.Equal("errno=0\n\n", UapiRawClient.Exchange(_ours.SocketPath, request));
            static string Lines(string reply) => string.Join('\n', reply.Split('\n').Where(static l => l.StartsWith("allowed_ip=", StringComparison.Ordinal) || l.StartsWith("endpoint=", StringComparison.Ordinal)));
            string theirs = Lines(UapiRawClient.Exchange(_theirs.SocketPath, "get=1\n\n"));
            Assert.Contains("allowed_ip=", theirs, StringComparison.Ordinal);
            Assert.Equal(theirs, Lines(UapiRawClient.Exchange(_ours.SocketPath, "get=1\n\n")));
        }
        finally
        {
            UapiRawClient.Exchange(_ours.SocketPath, ResetRequest);
            UapiRawClient.Exchange(_theirs.SocketPath, ResetRequest);
        }
    }

    /// <summary>
    /// Valid requests only, from small pools so that peers collide: prefixes that nest, repeat or
    /// differ only in host bits, peers removed, updated only, re-added, and the device's own key
    /// (a private key whose public key is one of the peers'). Several requests in a row, without a
    /// reset between them; the configurations must agree after each.
    /// </summary>
    /// <remarks>
    /// <c>remove</c> and <c>update_only</c> come right after <c>public_key</c>, where wg(8) writes
    /// them. Put after a peer's <c>allowed_ip</c> lines they differ: wireguard-go has by then moved
    /// those prefixes to the peer it then drops, so their earlier owners lose them; we apply a
    /// removed or not-created peer's block to nobody, and the earlier owners keep them.
    /// </remarks>
    // A fixed seed: CI runs the same cases each time (a divergence from an outside tool found at
    // random would fail one run in many and lose it). New seeds are explored by hand: drop Replay.
    [Property(MaxTest = 150, Arbitrary = [typeof(ValidUapiGenerators)], Replay = "(1609125011,1442695041)")]
    public Property A_series_of_valid_requests_leaves_the_configuration_wireguard_go_leaves(ValidUapiSeries series)
    {
        try
        {
            for (int i = 0; i < series.Requests.Length; i++)
            {
                string request = "set=1\n" + string.Concat(series.Requests[i].Select(static l => l + "\n")) + "\n";
                string ours = UapiRawClient.Exchange(_ours.SocketPath, request);
                string theirs = UapiRawClient.Exchange(_theirs.SocketPath, request);
                string ourState = Normalize(UapiRawClient.Exchange(_ours.SocketPath, "get=1\n\n"));
                string theirState = Normalize(UapiRawClient.Exchange(_theirs.SocketPath, "get=1\n\n"));
                if (ours != theirs || ourState != theirState)
                {
                    return false.Label($"request {i + 1}: ours {ours.Trim()} / wireguard-go {theirs.Trim()}\nours:\n{ourState}\nwireguard-go:\n{theirState}");
                }
            }
            return true.ToProperty();
        }
        finally
        {
            UapiRawClient.Exchange(_ours.SocketPath, ResetRequest);
            UapiRawClient.Exchange(_theirs.SocketPath, ResetRequest);
        }
    }

    /// <summary>
    /// The configuration lines of a get reply, peers sorted by key (wireguard-go lists them in map
    /// order) and their allowed IPs sorted; listen_port left out (wireguard-go binds a random port
    /// where we report 0 until a port is set) and the counters too.
    /// </summary>
    private static string Normalize(string reply)
    {
        var device = new List<string>();
        var peers = new List<List<string>>();
        foreach (var line in reply.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string key = line[..Math.Max(0, line.IndexOf('='))];
            if (key is "listen_port" or "errno" or "last_handshake_time_sec" or "last_handshake_time_nsec" or "tx_bytes" or "rx_bytes" or "protocol_version")
            {
                continue;
            }
            if (key == "private_key")
            {
                // wireguard-go stores the key clamped (RFC 7748 section 5), as the kernel does; we
                // keep it as given. The public key, and so every handshake, is the same.
                byte[] secret = Convert.FromHexString(line[(key.Length + 1)..]);
                secret[0] &= 248;
                secret[31] = (byte)((secret[31] & 127) | 64);
                device.Add("private_key=" + Convert.ToHexStringLower(secret));
                continue;
            }
            if (key == "endpoint")
            {
                // wireguard-go 0.0.20220316 drops an IPv6 zone and keeps an IPv4-mapped address
                // mapped; we keep the zone (as its index) and send to the IPv4 address.
                string endpoint = System.Text.RegularExpressions.Regex.Replace(line, "%[0-9]+", "");
                peers[^1].Add(System.Text.RegularExpressions.Regex.Replace(endpoint, @"^endpoint=\[::ffff:([0-9.]+)\]", "endpoint=$1"));
                continue;
            }
            if (key == "public_key")
            {
                peers.Add([line]);
            }
            else if (peers.Count == 0)
            {
                device.Add(line);
            }
            else
            {
                peers[^1].Add(line);
            }
        }
        foreach (var peer in peers)
        {
            peer.Sort(1, peer.Count - 1, StringComparer.Ordinal);
        }
        peers.Sort(static (a, b) => string.CompareOrdinal(a[0], b[0]));
        return string.Join('\n', device.Concat(peers.SelectMany(static p => p)));
    }
}

/// <summary>A few set requests' lines, sent one after the other.</summary>
public sealed record ValidUapiSeries(string[][] Requests)
{
    public override string ToString() => string.Join("\n--\n", Requests.Select(static r => string.Join('\n', r)));
}

public static class ValidUapiGenerators
{
    /// <summary>A private key and its public key, so a request can make a peer the device itself.</summary>
    public static readonly string OwnPrivate = new string('4', 63) + "8";

    public static readonly string OwnPublic = InMemoryTunnelControl.PublicKeyOf(new Firezone.Actors.Engine.WireGuard.WireGuardKey(Convert.FromHexString(OwnPrivate))).ToHex();

    private static readonly string[] Prefixes = ["10.0.0.0/8", "10.0.0.0/24", "10.0.0.1/32", "10.9.9.9/8", "0.0.0.0/0", "fd00::/64", "fd00::1/64", "::/0"];

    private static Gen<string> PeerLine => Gen.Frequency(
        (6, Gen.Elements(Prefixes).Select(static p => "allowed_ip=" + p)),
        (2, Gen.Constant("replace_allowed_ips=true")),
        (1, Gen.Elements("192.0.2.1:51820", "[2001:db8::1]:4500").Select(static e => "endpoint=" + e)),
        (1, Gen.Elements("0", "25").Select(static k => "persistent_keepalive_interval=" + k)),
        (1, Gen.Elements(new string('5', 64), new string('0', 64)).Select(static k => "preshared_key=" + k)),
        (1, Gen.Constant("protocol_version=1")));

    private static Gen<string[]> Request =>
        from device in Gen.Frequency(
            (6, Gen.Constant<string[]>([])),
            (1, Gen.Constant<string[]>(["replace_peers=true"])),
            (1, Gen.Constant<string[]>(["private_key=" + OwnPrivate])),
            (1, Gen.Elements("0", "7").Select(static m => new[] { "fwmark=" + m })))
        from peers in (from key in Gen.Frequency((6, Gen.Elements(UapiGenerators.PeerKeys)), (1, Gen.Constant(OwnPublic)))
                       from flag in Gen.Frequency((5, Gen.Constant<string[]>([])), (1, Gen.Constant<string[]>(["remove=true"])), (1, Gen.Constant<string[]>(["update_only=true"])))
                       from count in Gen.Choose(0, 5)
                       from lines in PeerLine.ArrayOf(count)
                       select (string[])["public_key=" + key, .. flag, .. lines]).ArrayOf()
        select (string[])[.. device, .. peers.SelectMany(static p => p)];

    public static Arbitrary<ValidUapiSeries> Series() =>
        Gen.Choose(1, 3).SelectMany(n => Request.ArrayOf(n)).Select(static r => new ValidUapiSeries(r)).ToArbitrary();
}

/// <summary>
/// Our server and wireguard-go's, started once for the class (each start of wireguard-go in its
/// namespace takes about a second). Clean-up is <see cref="IDisposable"/>: FsCheck's property
/// runner does not call IAsyncLifetime.DisposeAsync.
/// </summary>
public sealed class UapiServerPair : IDisposable
{
    internal UapiServerFixture Ours { get; } = UapiServerFixture.Start();

    internal WireGuardGoUapi Theirs { get; } = WireGuardGoUapi.StartAsync().GetAwaiter().GetResult();

    public void Dispose()
    {
        Ours.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Theirs.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
