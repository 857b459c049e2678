using Microsoft.Extensions.Logging;
using System.Net.Sockets;
using System.Text;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Cli;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Uapi;
using Microsoft.Extensions.Logging.Abstractions;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The UAPI server against Debian's wg(8): what wg writes, the server must accept, and what the
/// server answers, wg must print. Each test serves a uniquely named socket and removes it.
/// </summary>
public sealed class WgInteropTests
{
    private static async Task<string> KeyFileAsync(WireGuardKey key)
    {
        string path = Path.Combine(Path.GetTempPath(), "fzt-key-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(path, key.ToBase64() + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    private static async Task<string> WgOkAsync(params string[] arguments)
    {
        var result = await ProcessRunner.WgAsync(arguments);
        Assert.True(result.ExitCode == 0, $"wg {string.Join(' ', arguments)} exited {result.ExitCode}: {result.Stderr}");
        return result.Stdout;
    }

    [Fact]
    public async Task Wg_set_adds_and_removes_peers_and_wg_show_reads_them_back()
    {
        await using var fixture = UapiServerFixture.Start();
        var privateKey = TestKeys.New();
        var psk = TestKeys.New();
        var peerA = TestKeys.New();
        var peerB = TestKeys.New();
        string privateFile = await KeyFileAsync(privateKey);
        string pskFile = await KeyFileAsync(psk);
        try
        {
            await WgOkAsync("set", fixture.Name, "private-key", privateFile, "listen-port", "51999", "fwmark", "0x20",
                "peer", peerA.ToBase64(), "preshared-key", pskFile, "endpoint", "192.0.2.1:51820", "persistent-keepalive", "25",
                "allowed-ips", "10.0.0.0/24,fd00::/64",
                "peer", peerB.ToBase64(), "endpoint", "[2001:db8::1]:4500", "allowed-ips", "10.0.1.0/24");

            var status = await fixture.Control.GetStatusAsync(CancellationToken.None);
            Assert.Equal(privateKey, status.PrivateKey);
            Assert.Equal((ushort)51999, status.ListenPort);
            Assert.Equal(0x20u, status.Fwmark);
            Assert.Equal(2, status.Peers.Count);

            string dump = await WgOkAsync("show", fixture.Name, "dump");
            string[] lines = dump.TrimEnd('\n').Split('\n');
            Assert.Equal(3, lines.Length);
            // wg derives the public key itself (curve25519), so this also checks the private key round trip.
            Assert.Equal(
                $"{privateKey.ToBase64()}\t{InMemoryTunnelControl.PublicKeyOf(privateKey).ToBase64()}\t51999\t0x20", lines[0]);
            Assert.Equal($"{peerA.ToBase64()}\t{psk.ToBase64()}\t192.0.2.1:51820\t10.0.0.0/24,fd00::/64\t0\t0\t0\t25", lines[1]);
            Assert.Equal($"{peerB.ToBase64()}\t(none)\t[2001:db8::1]:4500\t10.0.1.0/24\t0\t0\t0\toff", lines[2]);

            await WgOkAsync("set", fixture.Name, "peer", peerA.ToBase64(), "remove", "peer", peerB.ToBase64(), "allowed-ips", "10.0.2.0/24");
            Assert.Equal($"{peerB.ToBase64()}\t10.0.2.0/24\n", await WgOkAsync("show", fixture.Name, "allowed-ips"));
            Assert.Equal(fixture.Name + "\n", (await WgOkAsync("show", "interfaces")).Split(' ', '\n').Where(n => n == fixture.Name).Select(n => n + "\n").Single());
        }
        finally
        {
            File.Delete(privateFile);
            File.Delete(pskFile);
        }
    }

    [Fact]
    public async Task Wg_setconf_syncconf_and_showconf_round_trip()
    {
        await using var fixture = UapiServerFixture.Start();
        var privateKey = TestKeys.New();
        var peerA = TestKeys.New();
        var peerB = TestKeys.New();
        var peerC = TestKeys.New();
        string file = Path.Combine(Path.GetTempPath(), "fzt-" + Guid.NewGuid().ToString("N") + ".conf");
        try
        {
            await File.WriteAllTextAsync(file, $"""
                [Interface]
                PrivateKey = {privateKey.ToBase64()}
                ListenPort = 40001

                [Peer]
                PublicKey = {peerA.ToBase64()}
                AllowedIPs = 10.0.0.2/32
                Endpoint = 127.0.0.1:40002

                [Peer]
                PublicKey = {peerB.ToBase64()}
                AllowedIPs = 10.0.0.3/32
                PersistentKeepalive = 15
                """);
            await WgOkAsync("setconf", fixture.Name, file);
            string shown = await WgOkAsync("showconf", fixture.Name);
            Assert.Equal($"""
                [Interface]
                ListenPort = 40001
                PrivateKey = {privateKey.ToBase64()}

                [Peer]
                PublicKey = {peerA.ToBase64()}
                AllowedIPs = 10.0.0.2/32
                Endpoint = 127.0.0.1:40002

                [Peer]
                PublicKey = {peerB.ToBase64()}
                AllowedIPs = 10.0.0.3/32
                PersistentKeepalive = 15

                """, shown);

            // syncconf: keep A (changed allowed IPs), drop B, add C, without replace_peers.
            await File.WriteAllTextAsync(file, $"""
                [Interface]
                PrivateKey = {privateKey.ToBase64()}
                ListenPort = 40001

                [Peer]
                PublicKey = {peerA.ToBase64()}
                AllowedIPs = 10.0.0.2/32, 10.0.9.0/24
                Endpoint = 127.0.0.1:40002

                [Peer]
                PublicKey = {peerC.ToBase64()}
                AllowedIPs = 10.0.0.4/32
                """);
            fixture.Control.Calls.Clear();
            await WgOkAsync("syncconf", fixture.Name, file);
            Assert.DoesNotContain("RemoveAllPeers", fixture.Control.Calls);
            Assert.Contains($"RemovePeer {peerB.ToBase64()}", fixture.Control.Calls);
            string dump = await WgOkAsync("show", fixture.Name, "allowed-ips");
            Assert.Equal($"{peerA.ToBase64()}\t10.0.0.2/32 10.0.9.0/24\n{peerC.ToBase64()}\t10.0.0.4/32\n", dump);

            // setconf replaces everything.
            await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {privateKey.ToBase64()}\n[Peer]\nPublicKey = {peerB.ToBase64()}\nAllowedIPs = 10.0.0.3/32\n");
            await WgOkAsync("setconf", fixture.Name, file);
            Assert.Equal($"{peerB.ToBase64()}\n", await WgOkAsync("show", fixture.Name, "peers"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Wg_show_prints_handshake_and_transfer_and_refusals_reach_wg()
    {
        await using var fixture = UapiServerFixture.Start();
        var peer = TestKeys.New();
        await WgOkAsync("set", fixture.Name, "peer", peer.ToBase64(), "allowed-ips", "10.0.0.0/24");
        fixture.Control.SetLiveState(peer, p => p with
        {
            LastHandshake = DateTimeOffset.UtcNow.AddSeconds(-65),
            RxBytes = 2048,
            TxBytes = 3 * 1024 * 1024,
        });
        string shown = await WgOkAsync("show", fixture.Name);
        Assert.Contains($"interface: {fixture.Name}", shown);
        Assert.Contains($"peer: {peer.ToBase64()}", shown);
        Assert.Contains("latest handshake: 1 minute, ", shown);
        Assert.Contains("transfer: 2.00 KiB received, 3.00 MiB sent", shown);

        // A refusal from the tunnel (port in use) reaches wg as an error, and the daemon stays up.
        fixture.Control.PortInUse = 40404;
        var refused = await ProcessRunner.WgAsync("set", fixture.Name, "listen-port", "40404");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("Address already in use", refused.Stderr);
        await WgOkAsync("show", fixture.Name);
    }

    [Fact]
    public async Task Malformed_requests_get_errno_replies_and_the_server_keeps_serving()
    {
        await using var fixture = UapiServerFixture.Start();
        using (var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(fixture.SocketPath));
            await using var stream = new NetworkStream(socket);
            var reader = new UapiLineReader(stream);

            async Task<List<string>> RequestAsync(string text)
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes(text));
                var lines = new List<string>();
                while (await reader.ReadLineAsync(CancellationToken.None) is { } line && line.Length > 0)
                {
                    lines.Add(line);
                }
                return lines;
            }

            // A set refused at a bad line closes its connection (as wireguard-go): one each.
            string Refused(string text) => UapiRawClient.Exchange(fixture.SocketPath, text).TrimEnd('\n');
            Assert.Equal("errno=-22", Refused("set=1\nbogus=1\n\n"));
            Assert.Equal("errno=-71", Refused("set=1\nno equals sign\n\n"));
            Assert.Equal("errno=-22", Refused("set=1\npublic_key=abc\n\n"));
            Assert.Equal("errno=-22", Refused($"set=1\npublic_key={TestKeys.New().ToHex()}\nallowed_ip=10.0.0.0/99\n\n"));
            // A failed request changes nothing, even the parts before the bad line.
            Assert.Equal("errno=-22", Refused($"set=1\nlisten_port=1234\npublic_key={TestKeys.New().ToHex()}\nendpoint=nowhere\n\n"));
            Assert.Equal(["errno=0"], await RequestAsync("get=1\n\n"));
            Assert.Equal(["errno=0"], await RequestAsync("set=1\nlisten_port=1235\n\n"));
            Assert.Equal(["listen_port=1235", "errno=0"], await RequestAsync("get=1\n\n"));
            Assert.Equal(["errno=-22"], await RequestAsync("nonsense=1\n"));
            Assert.Equal(0, await stream.ReadAsync(new byte[1])); // closed after an unknown operation
        }
        // A new client is served as before, and wg sees nothing wrong.
        Assert.Equal("", await WgOkAsync("show", fixture.Name, "peers"));
    }

    [Fact]
    public async Task Refused_requests_log_one_warning_per_interval_and_the_rest_at_debug()
    {
        // A script that sends bad requests in a loop must not flood the log.
        string path = UapiSocketPath.For(UapiServerFixture.UniqueName());
        var logger = new ListLogger();
        var server = UapiServer.Start(path, new InMemoryTunnelControl(), logger);
        try
        {
            for (int i = 0; i < 20; i++)
            {
                Assert.Equal("errno=-22\n\n", UapiRawClient.Exchange(path, "set=1\nbogus=1\n\n"));
            }
            var warning = Assert.Single(logger.At(LogLevel.Warning));
            Assert.StartsWith("UAPI request refused (errno 22)", warning);
            // The first warning has no earlier one to count from: it said "(0 more refused since
            // the last such warning)" on a daemon's first refusal.
            Assert.DoesNotContain("more refused", warning);
            Assert.Equal(19, logger.At(LogLevel.Debug).Count(m => m.StartsWith("UAPI request refused (errno 22)", StringComparison.Ordinal)));
        }
        finally
        {
            await server.DisposeAsync();
            File.Delete(path);
        }
    }

    [Fact]
    public async Task The_socket_is_root_only_and_a_second_daemon_cannot_take_it()
    {
        await using var fixture = UapiServerFixture.Start();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(fixture.SocketPath));
        var directoryMode = File.GetUnixFileMode(UapiSocketPath.DefaultDirectory);
        Assert.False(directoryMode.HasFlag(UnixFileMode.OtherWrite) || directoryMode.HasFlag(UnixFileMode.GroupWrite));

        var error = Assert.Throws<StartupException>(() => UapiServer.Start(fixture.SocketPath, new InMemoryTunnelControl(), NullLogger.Instance));
        Assert.Equal($"{fixture.SocketPath}: socket in use (is another daemon serving this interface?)", error.Message);
        Assert.Equal("", await WgOkAsync("show", fixture.Name, "peers"));
    }

    [Fact]
    public async Task A_stale_socket_file_is_replaced_and_removed_on_stop()
    {
        string name = UapiServerFixture.UniqueName();
        string path = UapiSocketPath.For(name);
        // Bound, never listening: connect is refused, as to the socket of a daemon killed with SIGKILL.
        // Kept open until the server has started: .NET removes the file when the socket is disposed.
        var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            stale.Bind(new UnixDomainSocketEndPoint(path));
            Assert.True(File.Exists(path));
            var server = UapiServer.Start(path, new InMemoryTunnelControl(), NullLogger.Instance);
            Assert.Equal("", await WgOkAsync("show", name, "peers"));
            await server.DisposeAsync();
            Assert.False(File.Exists(path));
        }
        finally
        {
            stale.Dispose();
            File.Delete(path);
        }
    }

    /// <summary>
    /// An empty directory at the socket path (left by a mistaken mkdir or a tool that took the name
    /// for one) is removed and the socket takes its place, as wireguard-go's UAPIOpen does (its
    /// os.Remove rmdirs it; checked against /usr/bin/wireguard-go). It was refused as "socket in
    /// use (is another daemon serving this interface?)", which no daemon was.
    /// </summary>
    [Fact]
    public async Task An_empty_directory_at_the_socket_path_is_removed_and_the_socket_takes_its_place()
    {
        string name = UapiServerFixture.UniqueName();
        string path = UapiSocketPath.For(name);
        Directory.CreateDirectory(path);
        try
        {
            var server = UapiServer.Start(path, new InMemoryTunnelControl(), NullLogger.Instance);
            Assert.False(Directory.Exists(path));
            Assert.Equal("", await WgOkAsync("show", name, "peers"));
            await server.DisposeAsync();
            Assert.False(File.Exists(path));
        }
        finally
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path);
            }
            File.Delete(path);
        }
    }

    /// <summary>
    /// A directory with something in it is not ours to empty: it is left as it is and the error names
    /// the path and says it is a directory (wireguard-go: "UAPI listen error: remove PATH: directory
    /// not empty", exit 1). It said "socket in use".
    /// </summary>
    [Fact]
    public void A_directory_with_files_at_the_socket_path_is_left_alone_and_named_as_such()
    {
        string name = UapiServerFixture.UniqueName();
        string path = UapiSocketPath.For(name);
        Directory.CreateDirectory(path);
        string kept = Path.Combine(path, "kept");
        File.WriteAllText(kept, "not ours");
        try
        {
            var error = Assert.Throws<StartupException>(() => UapiServer.Start(path, new InMemoryTunnelControl(), NullLogger.Instance));
            Assert.Equal($"{path}: is a directory, not a socket, and not empty: left as it is (remove it, or choose another interface name)", error.Message);
            Assert.Equal("not ours", File.ReadAllText(kept));
            Assert.Empty(Directory.GetFiles(UapiSocketPath.DefaultDirectory, name + ".sock.*")); // no bound leftover
        }
        finally
        {
            Directory.Delete(path, recursive: true);
        }
    }

    /// <summary>
    /// A symlink at the socket path to a directory elsewhere: the link is removed (as wireguard-go's
    /// os.Remove unlinks it), never followed, so the directory it points to, empty or not, stays.
    /// </summary>
    [Fact]
    public async Task A_symlink_to_a_directory_at_the_socket_path_is_removed_and_its_target_kept()
    {
        string name = UapiServerFixture.UniqueName();
        string path = UapiSocketPath.For(name);
        var target = Directory.CreateTempSubdirectory("fzt-target");
        File.CreateSymbolicLink(path, target.FullName);
        try
        {
            var server = UapiServer.Start(path, new InMemoryTunnelControl(), NullLogger.Instance);
            Assert.True(Directory.Exists(target.FullName));
            Assert.Equal("", await WgOkAsync("show", name, "peers"));
            await server.DisposeAsync();
            Assert.True(Directory.Exists(target.FullName));
        }
        finally
        {
            File.Delete(path);
            target.Delete();
        }
    }

    [Fact]
    public async Task Removing_the_socket_file_is_reported()
    {
        await using var fixture = UapiServerFixture.Start();
        File.Delete(fixture.SocketPath);
        var completed = await Task.WhenAny(fixture.Server.SocketRemoved, Task.Delay(TimeSpan.FromSeconds(10)));
        Assert.Same(fixture.Server.SocketRemoved, completed);
    }

    [Fact]
    public async Task Show_reads_the_ecn_counters_through_the_extension_verb()
    {
        await using var fixture = UapiServerFixture.Start();
        var privateKey = TestKeys.New();
        var peer = TestKeys.New();
        await fixture.Control.SetPrivateKeyAsync(privateKey, CancellationToken.None);
        await WgOkAsync("set", fixture.Name, "listen-port", "41000", "peer", peer.ToBase64(), "allowed-ips", "10.0.0.0/24", "endpoint", "127.0.0.1:41001");
        fixture.Control.SetLiveState(peer, p => p with
        {
            Ecn = new EcnCounters(EctSent: 100, CeReceived: 7, CePropagated: 6, EcnDrops: 1, AlarmEvents: 2),
            Config = p.Config with { EcnMode = Engine.EcnMode.Compatibility },
        });

        var status = await UapiClient.GetAsync(fixture.SocketPath, CancellationToken.None);
        string text = ShowFormatter.Format(fixture.Name, status, DateTimeOffset.UtcNow);
        Assert.Equal($"""
            interface: {fixture.Name}
              public key: {InMemoryTunnelControl.PublicKeyOf(privateKey).ToBase64()}
              private key: (hidden)
              listening port: 41000

            peer: {peer.ToBase64()}
              endpoint: 127.0.0.1:41001
              allowed ips: 10.0.0.0/24
              ecn mode: compatibility
              ecn: 100 ECT sent, 7 CE received, 6 CE propagated, 1 ECN drops, 2 (!!!) events

            """, text);
        Assert.DoesNotContain(privateKey.ToBase64(), text);

        // The standard verb carries none of the extension lines.
        var plain = await UapiClient.RequestAsync(fixture.SocketPath, "get=1\n\n", CancellationToken.None);
        Assert.DoesNotContain(plain, l => l.StartsWith("fz_", StringComparison.Ordinal));
    }

    /// <summary>
    /// wg show lists the peers with the latest handshake first and those without one last (its
    /// sort_peers), so the live ones of a Gateway's hundreds come first; firezone-tunnel show, which
    /// prints what wg show prints, listed them in configuration order.
    /// </summary>
    [Fact]
    public async Task Show_lists_the_peers_in_wg_shows_order()
    {
        await using var fixture = UapiServerFixture.Start();
        await fixture.Control.SetPrivateKeyAsync(TestKeys.New(), CancellationToken.None);
        WireGuardKey never = TestKeys.New(), long_ago = TestKeys.New(), recent = TestKeys.New(), older = TestKeys.New();
        await WgOkAsync("set", fixture.Name,
            "peer", never.ToBase64(), "allowed-ips", "10.0.1.0/24",
            "peer", long_ago.ToBase64(), "allowed-ips", "10.0.2.0/24",
            "peer", recent.ToBase64(), "allowed-ips", "10.0.3.0/24",
            "peer", older.ToBase64(), "allowed-ips", "10.0.4.0/24");
        var now = DateTimeOffset.UtcNow;
        fixture.Control.SetLiveState(long_ago, p => p with { LastHandshake = now.AddSeconds(-170) });
        fixture.Control.SetLiveState(recent, p => p with { LastHandshake = now.AddSeconds(-3) });
        fixture.Control.SetLiveState(older, p => p with { LastHandshake = now.AddSeconds(-60) });

        static List<string> PeerLines(string text) =>
            [.. text.Split('\n').Where(l => l.StartsWith("peer: ", StringComparison.Ordinal))];
        var wgOrder = PeerLines(await WgOkAsync("show", fixture.Name));
        Assert.Equal([$"peer: {recent.ToBase64()}", $"peer: {older.ToBase64()}", $"peer: {long_ago.ToBase64()}", $"peer: {never.ToBase64()}"], wgOrder);
        var status = await UapiClient.GetAsync(fixture.SocketPath, CancellationToken.None);
        Assert.Equal(wgOrder, PeerLines(ShowFormatter.Format(fixture.Name, status, DateTimeOffset.UtcNow)));
    }

    /// <summary>
    /// The transfer line reads as wg show's, also where the amount falls halfway between two
    /// hundredths (1,152 bytes are 1.125 KiB): wg's printf("%.2f") rounds such a tie to even, 1.12;
    /// .NET's format rounds it away from zero, and firezone-tunnel show printed 1.13.
    /// </summary>
    [Theory]
    [InlineData(1023UL, 1152UL)]
    [InlineData(1408UL, 1664UL)]
    [InlineData(5_898_240UL, 3_355_443UL)]
    [InlineData(2_415_919_104UL, 1_073_741_823UL)]
    public async Task Show_prints_the_transfer_as_wg_show_does(ulong received, ulong sent)
    {
        await using var fixture = UapiServerFixture.Start();
        await fixture.Control.SetPrivateKeyAsync(TestKeys.New(), CancellationToken.None);
        var peer = TestKeys.New();
        await WgOkAsync("set", fixture.Name, "peer", peer.ToBase64(), "allowed-ips", "10.0.1.0/24");
        fixture.Control.SetLiveState(peer, p => p with { RxBytes = received, TxBytes = sent });

        static string TransferLine(string text) => text.Split('\n').Single(l => l.StartsWith("  transfer: ", StringComparison.Ordinal));
        var status = await UapiClient.GetAsync(fixture.SocketPath, CancellationToken.None);
        Assert.Equal(TransferLine(await WgOkAsync("show", fixture.Name)), TransferLine(ShowFormatter.Format(fixture.Name, status, DateTimeOffset.UtcNow)));
    }

    /// <summary>
    /// The persistent keepalive reads as wg show's, which spells the interval as it spells a
    /// handshake's age ("every 1 minute, 5 seconds", "every 1 second"); firezone-tunnel show printed
    /// the seconds ("every 65 seconds", "every 1 seconds").
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(25)]
    [InlineData(60)]
    [InlineData(65)]
    [InlineData(3600)]
    [InlineData(65535)]
    public async Task Show_prints_the_persistent_keepalive_as_wg_show_does(int seconds)
    {
        await using var fixture = UapiServerFixture.Start();
        await fixture.Control.SetPrivateKeyAsync(TestKeys.New(), CancellationToken.None);
        var peer = TestKeys.New();
        await WgOkAsync("set", fixture.Name, "peer", peer.ToBase64(), "allowed-ips", "10.0.1.0/24",
            "persistent-keepalive", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));

        static string KeepaliveLine(string text) => text.Split('\n').Single(l => l.StartsWith("  persistent keepalive: ", StringComparison.Ordinal));
        var status = await UapiClient.GetAsync(fixture.SocketPath, CancellationToken.None);
        Assert.Equal(KeepaliveLine(await WgOkAsync("show", fixture.Name)), KeepaliveLine(ShowFormatter.Format(fixture.Name, status, DateTimeOffset.UtcNow)));
    }
}
