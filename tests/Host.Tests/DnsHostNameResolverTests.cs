using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Firezone.Actors.Host.Config;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// Service mode resolves Endpoint host names as wg(8) does under wg-quick@ (which sets
/// WG_ENDPOINT_RESOLUTION_RETRIES=infinity): a temporary failure (no network or DNS yet at boot)
/// is retried that many times with wg's waits, "no such name" fails at once; the variable
/// was ignored. The error names the host and the reason. The lookup and the wait are the test's:
/// no DNS and no sleeping.
/// </summary>
[Collection(ProcessSignalsCollection.Name)] // sends SIGTERM to this process: not beside DaemonTests' in-process daemon
public sealed class DnsHostNameResolverTests
{
    private static readonly IPAddress Address = IPAddress.Parse("192.0.2.7");

    private sealed class Script(params SocketError[] failures)
    {
        private int _calls;

        public List<TimeSpan> Waits { get; } = [];

        public int Calls => _calls;

        public IPAddress[] Lookup(string host)
        {
            int call = _calls++;
            if (call < failures.Length)
            {
                throw new SocketException((int)failures[call]);
            }
            return [Address];
        }
    }

    private static DnsHostNameResolver ResolverFor(Script script, int retries, TextWriter? progress = null) =>
        new(script.Lookup, script.Waits.Add, progress ?? TextWriter.Null, retries);

    [Fact]
    public void Temporary_failures_are_retried_with_wgs_waits_and_said_on_stderr()
    {
        var script = new Script(SocketError.TryAgain, SocketError.TryAgain);
        var progress = new StringWriter();
        var addresses = ResolverFor(script, 15, progress).Resolve("vpn.example");
        Assert.Equal([Address], addresses);
        Assert.Equal([TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1.2)], script.Waits);
        string[] lines = progress.ToString().TrimEnd('\n').Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("firezone-tunnel: cannot resolve the host name vpn.example: ", lines[0]);
        Assert.EndsWith("; trying again in 1.00 s", lines[0]);
        Assert.EndsWith("; trying again in 1.20 s", lines[1]);
    }

    [Theory]
    [InlineData(SocketError.HostNotFound)]
    [InlineData(SocketError.NoData)]
    [InlineData(SocketError.NoRecovery)]
    public void A_permanent_failure_is_not_retried(SocketError error)
    {
        var script = new Script(error);
        var e = Assert.Throws<HostNameResolutionException>(() => ResolverFor(script, -1).Resolve("nowhere.example"));
        Assert.Equal(1, script.Calls);
        Assert.Empty(script.Waits);
        Assert.Equal("nowhere.example", e.Host);
        Assert.StartsWith("cannot resolve the host name nowhere.example: ", e.Message);
    }

    [Fact]
    public void After_the_last_retry_the_failure_is_reported()
    {
        var script = new Script(SocketError.TryAgain, SocketError.TryAgain, SocketError.TryAgain, SocketError.TryAgain);
        Assert.Throws<HostNameResolutionException>(() => ResolverFor(script, 2).Resolve("vpn.example"));
        Assert.Equal(3, script.Calls); // the first try and two retries
        Assert.Equal(2, script.Waits.Count);
    }

    /// <summary>
    /// `firezone-tunnel up` on a laptop whose network (or DNS) is not up yet: wg-quick retried for
    /// about 2.5 minutes, `up` stopped at once with "Resource temporarily unavailable" (.NET's words
    /// for EAI_AGAIN) and no word that it could wait. Now wg's wording and how to make it wait.
    /// </summary>
    [Fact]
    public void A_temporary_failure_without_retries_says_so_in_wgs_words_and_how_to_wait_for_it()
    {
        var script = new Script(SocketError.TryAgain);
        var e = Assert.Throws<HostNameResolutionException>(() => ResolverFor(script, 0).Resolve("vpn.example"));
        Assert.Equal(1, script.Calls);
        Assert.Equal("Temporary failure in name resolution" + DnsHostNameResolver.WaitHint, e.Reason);
        Assert.Contains("WG_ENDPOINT_RESOLUTION_RETRIES=infinity", e.Message);
        // With retries, the last failure is the reason alone; a permanent one never gets the hint.
        var retried = Assert.Throws<HostNameResolutionException>(() => ResolverFor(new Script(SocketError.TryAgain, SocketError.TryAgain), 1).Resolve("vpn.example"));
        Assert.Equal("Temporary failure in name resolution", retried.Reason);
        var permanent = Assert.Throws<HostNameResolutionException>(() => ResolverFor(new Script(SocketError.HostNotFound), 0).Resolve("vpn.example"));
        Assert.DoesNotContain("WG_ENDPOINT_RESOLUTION_RETRIES", permanent.Reason);
    }

    [Fact]
    public void Without_a_limit_the_wait_grows_to_20_seconds_and_stays_there()
    {
        var failures = Enumerable.Repeat(SocketError.TryAgain, 30).ToArray();
        var script = new Script(failures);
        Assert.Equal([Address], ResolverFor(script, -1).Resolve("vpn.example"));
        Assert.Equal(30, script.Waits.Count);
        Assert.Equal(TimeSpan.FromSeconds(20), script.Waits[^1]);
        Assert.Equal(TimeSpan.FromSeconds(20), script.Waits.Max());
    }

    [Fact]
    public void An_address_is_not_looked_up()
    {
        var script = new Script(SocketError.TryAgain);
        Assert.Equal([IPAddress.Parse("2001:db8::1")], ResolverFor(script, 0).Resolve("2001:db8::1"));
        Assert.Equal(0, script.Calls);
    }

    [Theory]
    [InlineData(null, 0)]
    [InlineData("", 0)]
    [InlineData("infinity", -1)]
    [InlineData("0", 0)]
    [InlineData("3", 3)]
    [InlineData("many", 15)] // wg refuses the line ("Unable to parse"); a service start does not fail on it
    public void WG_ENDPOINT_RESOLUTION_RETRIES_is_read_as_wg_reads_it_and_an_unreadable_value_is_wgs_default(string? text, int expected) =>
        Assert.Equal(expected, DnsHostNameResolver.RetriesFrom(text));

    [Fact]
    public void The_config_error_names_the_line_the_host_and_the_reason()
    {
        var script = new Script(SocketError.HostNotFound);
        var parser = new WgQuickConfigParser(ResolverFor(script, 0));
        var e = Assert.Throws<ConfigException>(() => parser.Parse("/etc/wireguard/wg0.conf",
            $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nEndpoint = vpn.example:51820\n"));
        Assert.StartsWith("/etc/wireguard/wg0.conf:5: Endpoint: cannot resolve the host name vpn.example: ", e.Message);
        Assert.True(e.Transient); // exit 1: the systemd unit restarts, the name may resolve later
    }

    /// <summary>
    /// A name with an IPv6 and an IPv4 address, on a host with a global IPv6 route: wg (so
    /// wg-quick, and <c>systemctl reload</c>'s wg syncconf) takes getaddrinfo's first answer, which
    /// RFC 6724 orders IPv6 first here. <c>up</c> took the IPv4 address, so the service sent to
    /// another address than wg-quick did with the same file, and a reload moved the peer to IPv6.
    /// The names come from a hosts file bound over /etc/hosts in a mount namespace of the daemon's
    /// and wg's own (no DNS).
    /// </summary>
    [Fact]
    public async Task Up_takes_the_address_wg_takes_for_a_name_with_both_families()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        string hosts = Path.Combine(Path.GetTempPath(), name + ".hosts");
        string peerA = TestKeys.New().ToBase64();
        string peerB = TestKeys.New().ToBase64();
        await File.WriteAllTextAsync(hosts, "127.0.0.1 localhost\n2001:db8:5::2 fz-dual.test\n192.0.2.2 fz-dual.test\n");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n[Peer]\nPublicKey = {peerA}\nAllowedIPs = 10.0.0.1/32\nEndpoint = fz-dual.test:51820\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        string[] withHosts = ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount --bind \"$0\" /etc/hosts && exec \"$@\"", hosts];
        try
        {
            // Both families routed, as on a dual-stack host (a veth: no dummy module here).
            foreach (string[] command in (string[][])[
                ["link", "add", "fzdual", "type", "veth", "peer", "name", "fzdual-end"], ["link", "set", "fzdual", "up"], ["link", "set", "fzdual-end", "up"],
                ["address", "add", "2001:db8:5::1/64", "dev", "fzdual", "nodad"], ["address", "add", "192.0.2.1/24", "dev", "fzdual"]])
            {
                var ip = await ns.ExecAsync("ip", command, timeout: TimeSpan.FromSeconds(10));
                Assert.True(ip.ExitCode == 0, ip.Stderr);
            }
            // getaddrinfo deems IPv6 unusable until the veth's carrier is up: wait until it orders
            // the name's IPv6 address first, the case where preferring IPv4 differed from wg.
            using (var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
            {
                while (!(await ns.ExecAsync(withHosts[0], [.. withHosts[1..], "getent", "ahosts", "fz-dual.test"], timeout: TimeSpan.FromSeconds(10))).Stdout.StartsWith("2001:db8:5::2 ", StringComparison.Ordinal))
                {
                    await Task.Delay(100, bound.Token);
                }
            }
            await using var daemon = DaemonProcess.StartUnder(ns, name, withHosts, "up", "--config", file);
            await daemon.WaitReadyAsync();
            var set = await ns.ExecAsync(withHosts[0], [.. withHosts[1..], "wg", "set", name, "peer", peerB, "endpoint", "fz-dual.test:51820"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(set.ExitCode == 0, set.Stderr);
            var show = await ns.ExecAsync("wg", ["show", name, "endpoints"], timeout: TimeSpan.FromSeconds(10));
            Assert.True(show.ExitCode == 0, show.Stderr);
            var endpoints = show.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split('\t')).ToDictionary(f => f[0], f => f[1]);
            Assert.Equal("[2001:db8:5::2]:51820", endpoints[peerB]); // what wg picked
            Assert.Equal(endpoints[peerB], endpoints[peerA]);
        }
        finally
        {
            File.Delete(file);
            File.Delete(hosts);
        }
    }

    /// <summary>
    /// A link-local literal's zone by a name no interface has fails, as wg's getaddrinfo fails it
    /// ("Name or service not known") so that wg-quick up stops; .NET's IPAddress.TryParse gave scope
    /// 0, and the endpoint was set without its zone. A name that exists, or a number, is kept.
    /// </summary>
    [Fact]
    public void A_literal_whose_zone_names_no_interface_fails_and_one_that_names_one_keeps_it()
    {
        var script = new Script();
        var error = Assert.Throws<HostNameResolutionException>(() => ResolverFor(script, 0).Resolve("fe80::1%fzt-nosuch0"));
        Assert.Equal("cannot resolve the host name fe80::1%fzt-nosuch0: no interface 'fzt-nosuch0' for the address's zone", error.Message);
        Assert.Equal(1, ResolverFor(script, 0).Resolve("fe80::1%lo")[0].ScopeId);
        Assert.Equal(77, ResolverFor(script, 0).Resolve("fe80::1%77")[0].ScopeId);
        Assert.Equal(0, script.Calls);
    }

    /// <summary>
    /// A SIGTERM that comes while a name is looked up (a lookup can take seconds without a
    /// reachable server) stops the start, also when that lookup then succeeds: the handlers were
    /// registered for each wait only, and as PID 1 of a container, where the kernel drops a signal
    /// without a handler, such a stop was lost (`docker stop` waited for its SIGKILL). The signal
    /// goes to this test process, whose handler is the resolver's while it runs.
    /// The lookup returns once the runtime has dispatched the signal (a handler of the test's own,
    /// registered with the resolver's, has run): it returned after a fixed 300 ms, in which the
    /// runtime's signal thread and the handler thread it starts must have run. Later than that on a
    /// loaded machine, the lookup succeeded first (the test failed), and a signal thread later than
    /// the resolver's Dispose found no handler and ended the test process (SIGTERM's default).
    /// </summary>
    [Fact]
    public void A_stop_during_a_lookup_stops_the_start_even_when_the_lookup_succeeds()
    {
        var resolver = new DnsHostNameResolver(host =>
        {
            using var dispatched = new ManualResetEventSlim();
            using (PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; dispatched.Set(); }))
            {
                Assert.Equal(0, Tmds.Linux.LibC.kill(Environment.ProcessId, Tmds.Linux.LibC.SIGTERM));
                Assert.True(dispatched.Wait(TimeSpan.FromSeconds(30)), "the SIGTERM was not dispatched within 30 s");
            }
            // The handlers of one signal run one after the other on one thread: the resolver's
            // before the test's, or right after it.
            Thread.Sleep(300);
            return [Address];
        }, wait: null, TextWriter.Null, retries: -1);

        var failure = Assert.Throws<HostNameResolutionException>(() => resolver.Resolve("gw.example"));
        Assert.Contains("SIGTERM received while the name was looked up", failure.Message);
    }
}
