using System.Net;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Network;
using Tmds.Linux;
using Xunit.Abstractions;
using static Tmds.Linux.LibC;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// <c>SaveConfig = true</c> in service mode: on stop, after PreDown, the file is rewritten with the
/// interface's state as wg-quick down's save_config rewrites it (its [Interface] header, then what
/// wg showconf prints), plus the engine's <c>#!</c> directives.
/// </summary>
public sealed class SaveConfigTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static readonly WireGuardKey PeerA = TestKeys.New();
    private static readonly WireGuardKey PeerB = TestKeys.New();
    private static readonly WireGuardKey Psk = TestKeys.New();

    [Fact]
    public void The_saved_text_is_wg_quick_s_header_then_wg_showconf_and_reads_back_the_same()
    {
        var privateKey = TestKeys.New();
        var config = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf", $"""
            [Interface]
            PrivateKey = {privateKey.ToBase64()}
            Address = 10.0.0.1/24
            DNS = 10.0.0.53, corp.example, fd00::53
            MTU = 1400
            Table = 1234
            SaveConfig = true
            PostDown = echo bye %i
            PreUp = echo hello # a comment wg-quick drops too
            #! Role = gateway
            #! EcnMode = compatibility

            [Peer]
            PublicKey = {PeerA.ToBase64()}
            AllowedIPs = 10.0.0.2/32
            """);
        var status = new DeviceStatus
        {
            PrivateKey = privateKey,
            ListenPort = 51820,
            Fwmark = 0xca6c,
            Peers =
            [
                new PeerStatus
                {
                    Config = new PeerConfig
                    {
                        PublicKey = PeerA, PresharedKey = Psk, AllowedIps = [IpPrefix.Parse("10.0.0.2/32"), IpPrefix.Parse("fd00::2/128")],
                        PersistentKeepaliveSeconds = 25, EcnMode = EcnMode.Compatibility,
                    },
                    // Roaming moved it: the live endpoint is saved, not the configured one.
                    Endpoint = UdpEndpoint.FromIPEndPoint(new IPEndPoint(IPAddress.Parse("fd00::9"), 4500)),
                },
                new PeerStatus { Config = new PeerConfig { PublicKey = PeerB, EcnMode = EcnMode.Off } },
            ],
        };
        string text = SavedConfigText.Format(config, status, ["10.0.0.1/24", "10.0.1.1/24"], 1380);
        Assert.Equal($"""
            [Interface]
            Address = 10.0.0.1/24
            Address = 10.0.1.1/24
            DNS = 10.0.0.53
            DNS = fd00::53
            DNS = corp.example
            MTU = 1380
            Table = 1234
            SaveConfig = true
            PreUp = echo hello
            PostDown = echo bye %i
            #! Role = gateway
            #! EcnMode = compatibility
            ListenPort = 51820
            FwMark = 0xca6c
            PrivateKey = {privateKey.ToBase64()}

            [Peer]
            PublicKey = {PeerA.ToBase64()}
            PresharedKey = {Psk.ToBase64()}
            AllowedIPs = 10.0.0.2/32, fd00::2/128
            Endpoint = [fd00::9]:4500
            PersistentKeepalive = 25

            [Peer]
            PublicKey = {PeerB.ToBase64()}
            #! EcnMode = off

            """.Replace("\r", ""), text);

        // Read back, the file starts the interface the daemon was stopped with.
        var saved = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf", text);
        Assert.Empty(saved.Notes);
        Assert.Equal(privateKey, saved.Interface.PrivateKey);
        Assert.Equal((ushort)51820, saved.Interface.ListenPort);
        Assert.Equal(0xca6cu, saved.Interface.FwMark);
        Assert.Equal(["10.0.0.1/24", "10.0.1.1/24"], saved.Interface.Addresses.Select(a => a.ToString()));
        Assert.Equal(config.Interface.Dns, saved.Interface.Dns);
        Assert.Equal(config.Interface.DnsSearch, saved.Interface.DnsSearch);
        Assert.Equal(1380, saved.Interface.Mtu);
        Assert.Equal(config.Interface.Table, saved.Interface.Table);
        Assert.True(saved.Interface.SaveConfig);
        // In wg-quick's order: PreUp, PostUp, PreDown, PostDown.
        Assert.Equal(config.Interface.Hooks.OrderBy(h => h.Stage).Select(h => (h.Stage, h.Command)), saved.Interface.Hooks.Select(h => (h.Stage, h.Command)));
        Assert.Equal(HostRole.Gateway, saved.Interface.Role);
        Assert.Equal(EcnMode.Compatibility, saved.Interface.DefaultEcnMode);
        Assert.Equal(2, saved.Peers.Count);
        Assert.Equal(status.Peers[0].Config with { Endpoint = status.Peers[0].Endpoint }, saved.Peers[0] with { AllowedIps = status.Peers[0].Config.AllowedIps });
        Assert.Equal(status.Peers[0].Config.AllowedIps, saved.Peers[0].AllowedIps);
        Assert.Equal(EcnMode.Off, saved.Peers[1].EcnMode);
        Assert.Empty(saved.Peers[1].AllowedIps);
    }

    [Fact]
    public void Without_peers_the_file_ends_after_the_private_key_as_wg_quick_writes_it()
    {
        var privateKey = TestKeys.New();
        var config = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf", $"[Interface]\nPrivateKey = {privateKey.ToBase64()}\nSaveConfig = true\n");
        string text = SavedConfigText.Format(config, new DeviceStatus { PrivateKey = privateKey, ListenPort = 40000 }, [], 1420);
        Assert.Equal($"[Interface]\nSaveConfig = true\nListenPort = 40000\nPrivateKey = {privateKey.ToBase64()}\n", text);
    }

    /// <summary>
    /// The `#!` directives count as the file reads at the save (README): a peer the file names is
    /// saved with the file's ECN mode, not the one it still runs in. Seen in the lab (2026-11-28): a
    /// file with `SaveConfig = true` and `#! EcnMode = compatibility` in [Interface], edited to
    /// `normal`, then `systemctl restart`: the stop saved `#! EcnMode = compatibility` under the
    /// [Peer] (its running mode) and the restart ran the peer in compatibility mode again. A peer only
    /// the UAPI added (not in the file) keeps the mode it runs in.
    /// </summary>
    [Fact]
    public void A_peer_the_file_names_is_saved_with_the_file_s_ecn_mode_not_the_one_it_still_runs_in()
    {
        var privateKey = TestKeys.New();
        var peerC = TestKeys.New();
        var config = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf", $"""
            [Interface]
            PrivateKey = {privateKey.ToBase64()}
            SaveConfig = true
            #! EcnMode = normal

            [Peer]
            PublicKey = {PeerA.ToBase64()}

            [Peer]
            PublicKey = {PeerB.ToBase64()}
            #! EcnMode = off
            """);
        var status = new DeviceStatus
        {
            PrivateKey = privateKey,
            ListenPort = 40000,
            Peers =
            [
                // Both started under the file before its edit (compatibility for every peer).
                new PeerStatus { Config = new PeerConfig { PublicKey = PeerA, EcnMode = EcnMode.Compatibility } },
                new PeerStatus { Config = new PeerConfig { PublicKey = PeerB, EcnMode = EcnMode.Compatibility } },
                // Added with wg set, not in the file.
                new PeerStatus { Config = new PeerConfig { PublicKey = peerC, EcnMode = EcnMode.Off } },
            ],
        };
        string text = SavedConfigText.Format(config, status, [], 1420);
        Assert.Equal($"""
            [Interface]
            SaveConfig = true
            ListenPort = 40000
            PrivateKey = {privateKey.ToBase64()}

            [Peer]
            PublicKey = {PeerA.ToBase64()}

            [Peer]
            PublicKey = {PeerB.ToBase64()}
            #! EcnMode = off

            [Peer]
            PublicKey = {peerC.ToBase64()}
            #! EcnMode = off

            """.Replace("\r", ""), text);
    }

    /// <summary>
    /// An endpoint on port 0 (`wg set IF peer K endpoint 192.0.2.1:0` or `[::]:0`, which the UAPI
    /// takes as wireguard-go does) reaches nothing, and the file parser refuses it as a typo: saved,
    /// it left a file the next start refused. The saved peer has no endpoint, which sends nowhere too.
    /// </summary>
    [Fact]
    public void An_endpoint_on_port_zero_is_not_saved_so_the_file_reads_back()
    {
        var privateKey = TestKeys.New();
        var config = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf", $"[Interface]\nPrivateKey = {privateKey.ToBase64()}\nSaveConfig = true\n");
        Assert.True(EndpointText.TryParseNumeric("[::]:0", out var unspecified, out _));
        var status = new DeviceStatus
        {
            PrivateKey = privateKey,
            ListenPort = 40000,
            Peers =
            [
                new PeerStatus { Config = new PeerConfig { PublicKey = PeerA }, Endpoint = UdpEndpoint.FromIPv4([192, 0, 2, 1], 0) },
                new PeerStatus { Config = new PeerConfig { PublicKey = PeerB }, Endpoint = unspecified },
            ],
        };
        string text = SavedConfigText.Format(config, status, [], 1420);
        Assert.DoesNotContain("Endpoint", text);
        var saved = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf", text);
        Assert.Equal([PeerA, PeerB], saved.Peers.Select(p => p.PublicKey));
    }

    [Fact]
    public void The_kernels_link_local_address_is_not_saved_but_one_the_file_gives_is()
    {
        var configured = new List<InterfaceAddress>();
        Assert.True(InterfaceAddress.TryParse("fe80::1/64", out var given, out _));
        configured.Add(given);
        string brief = "wg0             UNKNOWN        10.9.0.1/24 10.9.1.1/24 fd00::1/64 fe80::f6e3:7b43:c812:3651/64 fe80::1/64 \n";
        Assert.Equal(["10.9.0.1/24", "10.9.1.1/24", "fd00::1/64", "fe80::1/64"], ConfigSaver.Addresses(brief, "wg0", configured, out _));
        Assert.Empty(ConfigSaver.Addresses("wg0             DOWN           \n", "wg0", configured, out _));

        // An address with a peer is three words in ip -brief, and no Address line can give it.
        Assert.Equal(["10.9.0.1/24", "fd00::1/64"],
            ConfigSaver.Addresses("wg0 UNKNOWN 10.9.0.1/24 10.88.0.1 peer 10.88.0.2/32 fd00::1/64\n", "wg0", configured, out var dropped));
        Assert.Equal(["10.88.0.1 peer 10.88.0.2/32"], dropped);
    }

    /// <summary>As wg showconf (getnameinfo): a link-local endpoint's zone by name, which reads back.</summary>
    [Fact]
    public void A_link_local_endpoint_is_saved_with_its_interfaces_name()
    {
        var privateKey = TestKeys.New();
        var config = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf", $"[Interface]\nPrivateKey = {privateKey.ToBase64()}\n");
        var loopback = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces().First(n => n.Name == "lo");
        int index = loopback.GetIPProperties().GetIPv6Properties().Index;
        var endpoint = UdpEndpoint.FromIPEndPoint(new IPEndPoint(new IPAddress(IPAddress.Parse("fe80::1").GetAddressBytes(), index), 51820));
        string text = SavedConfigText.Format(config, new DeviceStatus
        {
            PrivateKey = privateKey,
            Peers = [new PeerStatus { Config = new PeerConfig { PublicKey = PeerA }, Endpoint = endpoint }],
        }, [], 0);
        Assert.Contains("\nEndpoint = [fe80::1%lo]:51820\n", text);
        var saved = new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf", text);
        Assert.Equal(endpoint, saved.Peers[0].Endpoint);
    }

    private static string Config(WireGuardKey privateKey, string directory, string extra = "") => $"""
        [Interface]
        PrivateKey = {privateKey.ToBase64()}
        Address = 10.9.0.1/24, fd00::1/64
        ListenPort = 51999
        MTU = 1400
        Table = off
        SaveConfig = true
        PostUp = echo up %i
        PreDown = wg showconf %i > {directory}/%i.showconf
        {extra}
        [Peer]
        PublicKey = {PeerA.ToBase64()}
        PresharedKey = {Psk.ToBase64()}
        AllowedIPs = 10.9.0.2/32, fd00::2/128
        Endpoint = 127.0.0.1:51998
        PersistentKeepalive = 25

        """;

    /// <summary>What wg set and ip add change at run time, the same for both implementations.</summary>
    private static async Task ChangeAsync(NetworkNamespace ns, string name)
    {
        var set = await ns.ExecAsync("wg", ["set", name, "peer", PeerB.ToBase64(), "allowed-ips", "10.9.0.3/32,10.9.8.0/24", "endpoint", "[fd00::5]:5000",
            "peer", PeerA.ToBase64(), "persistent-keepalive", "15"], timeout: Bound);
        Assert.True(set.ExitCode == 0, set.Stderr);
        var add = await ns.ExecAsync("ip", ["address", "add", "10.9.1.1/24", "dev", name], timeout: Bound);
        Assert.True(add.ExitCode == 0, add.Stderr);
        var mtu = await ns.ExecAsync("ip", ["link", "set", "dev", name, "mtu", "1380"], timeout: Bound);
        Assert.True(mtu.ExitCode == 0, mtu.Stderr);
    }

    /// <summary>The [Interface] section as it is, the [Peer] sections sorted (wireguard-go lists its peers in no fixed order).</summary>
    private static string Canonical(string text)
    {
        string[] sections = text.Split("\n\n");
        return string.Join("\n\n", sections.Take(1).Concat(sections.Skip(1).Select(s => s.TrimEnd('\n')).Order(StringComparer.Ordinal)));
    }

    /// <summary>
    /// The same file, the same changes at run time (a peer added, a keepalive changed, an address
    /// added, the MTU changed): `firezone-tunnel up` then SIGTERM writes what `wg-quick up` with
    /// Debian's wireguard-go then `wg-quick down` writes, but for the link-local address the kernel
    /// gave wireguard-go's TUN device (which wg-quick saves, and which the next up would add again).
    /// The PreDown's `wg showconf` answers during the stop (it hung until 2026-11-27: Akka's own
    /// SIGTERM hook terminated the actor system before the hooks ran).
    /// </summary>
    [Fact]
    public async Task Stop_saves_the_file_as_wg_quick_down_saves_it()
    {
        string directory = Directory.CreateTempSubdirectory("fz-save-").FullName;
        // As wg genkey makes it: wireguard-go keeps the clamped form (RFC 7748) and shows that.
        byte[] key = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        key[0] &= 248;
        key[31] = (byte)((key[31] & 127) | 64);
        Assert.True(WireGuardKey.TryParseBase64(Convert.ToBase64String(key), out var privateKey));
        await using var theirsNs = await NetworkNamespace.CreateAsync();
        await using var oursNs = await NetworkNamespace.CreateAsync();
        string theirName = "fzq" + Guid.NewGuid().ToString("N")[..8];
        string ourName = UapiServerFixture.UniqueName();
        string theirFile = Path.Combine(directory, theirName + ".conf");
        string ourFile = Path.Combine(directory, ourName + ".conf");
        await File.WriteAllTextAsync(theirFile, Config(privateKey, directory));
        await File.WriteAllTextAsync(ourFile, Config(privateKey, directory));
        File.SetUnixFileMode(theirFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.SetUnixFileMode(ourFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var environment = new Dictionary<string, string>
        {
            ["WG_QUICK_USERSPACE_IMPLEMENTATION"] = "wireguard-go",
            ["WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"] = "1",
        };
        try
        {
            var up = await theirsNs.ExecAsync("wg-quick", ["up", theirFile], environment, Bound);
            Assert.True(up.ExitCode == 0, up.Stderr);
            await ChangeAsync(theirsNs, theirName);
            var down = await theirsNs.ExecAsync("wg-quick", ["down", theirFile], environment, Bound);
            Assert.True(down.ExitCode == 0, down.Stderr);

            await using (var daemon = DaemonProcess.Start(oursNs, ourName, "up", ourFile))
            {
                await daemon.WaitReadyAsync();
                await ChangeAsync(oursNs, ourName);
                daemon.Signal(SIGTERM);
                int exitCode = await daemon.WaitForExitAsync(Bound);
                string log = await File.ReadAllTextAsync(daemon.LogFile);
                output.WriteLine(log);
                Assert.Equal(0, exitCode);
                Assert.Contains($"SaveConfig: saved {ourName}'s configuration (2 peer(s)) to {ourFile}", log);
            }

            string theirs = await File.ReadAllTextAsync(theirFile);
            string ours = await File.ReadAllTextAsync(ourFile);
            output.WriteLine(theirs);
            output.WriteLine(ours);
            var kernelLinkLocal = theirs.Split('\n').Where(l => l.StartsWith("Address = fe80:", StringComparison.Ordinal)).ToList();
            Assert.Single(kernelLinkLocal);
            Assert.Equal(Canonical(theirs.Replace(kernelLinkLocal[0] + "\n", "")), Canonical(ours));
            Assert.Contains("Address = 10.9.1.1/24\n", ours);
            Assert.Contains("MTU = 1380\n", ours);
            Assert.Contains("PersistentKeepalive = 15\n", ours);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ourFile));
            Assert.False(File.Exists(ourFile + ".tmp"));

            // The PreDown read the live peers while the daemon stopped.
            string showconf = await File.ReadAllTextAsync(Path.Combine(directory, ourName + ".showconf"));
            Assert.Contains($"PublicKey = {PeerB.ToBase64()}", showconf);
        }
        finally
        {
            await StopLeftoversAsync(theirsNs);
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>As wg-quick down, which stops at a failing PreDown: the file stays as it was.</summary>
    [Fact]
    public async Task A_failing_PreDown_leaves_the_file_as_it_was()
    {
        await using var lab = await SaveLab.CreateAsync();
        var (ns, name, directory) = (lab.Namespace, lab.Name, lab.Directory);
        string file = Path.Combine(directory, name + ".conf");
        string text = $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nSaveConfig = true\nPreDown = false\n";
        await File.WriteAllTextAsync(file, text);
        await using var daemon = DaemonProcess.Start(ns, name, "up", file);
        await daemon.WaitReadyAsync();
        Assert.Equal(0, (await ns.ExecAsync("wg", ["set", name, "peer", PeerA.ToBase64()], timeout: Bound)).ExitCode);
        daemon.Signal(SIGTERM);
        Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
        Assert.Equal(text, await File.ReadAllTextAsync(file));
        Assert.Contains($"SaveConfig: {file} not saved: a PreDown failed (wg-quick down stops there too)", await File.ReadAllTextAsync(daemon.LogFile));
    }

    /// <summary>
    /// Deleting the interface stops the daemon (as wireguard-go); the peers are still known and
    /// saved, with the file's addresses, which went with the link.
    /// </summary>
    [Fact]
    public async Task An_interface_deleted_from_outside_still_saves_its_peers_with_the_files_addresses()
    {
        await using var lab = await SaveLab.CreateAsync();
        var (ns, name, directory) = (lab.Namespace, lab.Name, lab.Directory);
        string file = Path.Combine(directory, name + ".conf");
        var privateKey = TestKeys.New();
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {privateKey.ToBase64()}\nAddress = 10.9.0.1/24\nMTU = 1400\nSaveConfig = true\n");
        await using var daemon = DaemonProcess.Start(ns, name, "up", file);
        await daemon.WaitReadyAsync();
        Assert.Equal(0, (await ns.ExecAsync("wg", ["set", name, "peer", PeerA.ToBase64(), "allowed-ips", "10.9.0.2/32"], timeout: Bound)).ExitCode);
        Assert.Equal(0, (await ns.ExecAsync("ip", ["link", "del", "dev", name], timeout: Bound)).ExitCode);
        Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
        output.WriteLine(await File.ReadAllTextAsync(daemon.LogFile));
        string saved = await File.ReadAllTextAsync(file);
        Assert.StartsWith("[Interface]\nAddress = 10.9.0.1/24\nMTU = 1400\nSaveConfig = true\nListenPort = ", saved);
        Assert.EndsWith($"PrivateKey = {privateKey.ToBase64()}\n\n[Peer]\nPublicKey = {PeerA.ToBase64()}\nAllowedIPs = 10.9.0.2/32\n", saved);
    }

    /// <summary>
    /// `firezone-tunnel save NAME`, as `wg-quick save NAME`: the running interface's state written to
    /// its file at once; without SaveConfig in the file, no SaveConfig line and nothing saved on stop.
    /// </summary>
    [Fact]
    public async Task Save_writes_the_running_interfaces_state_to_its_file_as_wg_quick_save()
    {
        await using var lab = await SaveLab.CreateAsync();
        var (ns, name, directory) = (lab.Namespace, lab.Name, lab.Directory);
        string file = Path.Combine(directory, name + ".conf");
        var privateKey = TestKeys.New();
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {privateKey.ToBase64()}\nAddress = 10.9.0.1/24\nListenPort = 51999\n#! EcnMode = off\n");
        await using var daemon = DaemonProcess.Start(ns, name, "up", file);
        await daemon.WaitReadyAsync();
        Assert.Equal(0, (await ns.ExecAsync("wg", ["set", name, "peer", PeerA.ToBase64(), "allowed-ips", "10.9.0.2/32"], timeout: Bound)).ExitCode);
        var save = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", name], timeout: Bound);
        Assert.True(save.ExitCode == 0, save.Stderr);
        Assert.Equal($"Saved {name}'s configuration to {file}\n", save.Stdout);
        Assert.Contains($"Saved {name}'s configuration (1 peer(s)) to {file} (firezone-tunnel save)", await File.ReadAllTextAsync(daemon.LogFile));
        string saved = $"[Interface]\nAddress = 10.9.0.1/24\n#! EcnMode = off\nListenPort = 51999\nPrivateKey = {privateKey.ToBase64()}\n\n"
            + $"[Peer]\nPublicKey = {PeerA.ToBase64()}\nAllowedIPs = 10.9.0.2/32\n";
        Assert.Equal(saved, await File.ReadAllTextAsync(file));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));

        Assert.Equal(0, (await ns.ExecAsync("wg", ["set", name, "peer", PeerB.ToBase64()], timeout: Bound)).ExitCode);
        daemon.Signal(SIGTERM);
        Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
        Assert.Equal(saved, await File.ReadAllTextAsync(file));
    }

    /// <summary>
    /// A file under a directory whose name is not ASCII: the command names the file it was given,
    /// UTF-8 end to end, as does the reason a save failed. The UAPI reply was written and read as
    /// ASCII, so each such character came back as '?'.
    /// </summary>
    [Fact]
    public async Task Save_reports_a_path_with_UTF_8_characters_as_it_was_given()
    {
        await using var lab = await SaveLab.CreateAsync();
        var (ns, name) = (lab.Namespace, lab.Name);
        string directory = Directory.CreateDirectory(Path.Combine(lab.Directory, "wg-conf-é-日本")).FullName;
        string file = Path.Combine(directory, name + ".conf");
        var privateKey = TestKeys.New();
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {privateKey.ToBase64()}\nListenPort = 51999\n");
        await using var daemon = DaemonProcess.Start(ns, name, "up", file);
        await daemon.WaitReadyAsync();
        Assert.Equal(0, (await ns.ExecAsync("wg", ["set", name, "peer", PeerA.ToBase64()], timeout: Bound)).ExitCode);
        var utf8 = new Dictionary<string, string> { ["LC_ALL"] = "C.UTF-8" };
        var save = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", name], environment: utf8, timeout: Bound);
        Assert.True(save.ExitCode == 0, save.Stderr);
        Assert.Equal($"Saved {name}'s configuration to {file}\n", save.Stdout);
        Assert.Equal($"[Interface]\nListenPort = 51999\nPrivateKey = {privateKey.ToBase64()}\n\n[Peer]\nPublicKey = {PeerA.ToBase64()}\n", await File.ReadAllTextAsync(file));

        Directory.Delete(directory, recursive: true);
        var failed = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", name], environment: utf8, timeout: Bound);
        Assert.Equal(1, failed.ExitCode);
        Assert.Equal($"firezone-tunnel: {name}: not saved: {file}: cannot read the file: no such file\n", failed.Stderr);
    }

    /// <summary>
    /// wg set sends a link-local endpoint's zone as its interface's name (getnameinfo), in UTF-8 when
    /// the name is: the daemon must read it as such to find the interface (wireguard-go takes the
    /// bytes too), and save writes it back. Read as ASCII the name was "d??": no such interface, EINVAL.
    /// </summary>
    [Fact]
    public async Task A_link_local_endpoint_on_an_interface_with_a_UTF_8_name_is_set_and_saved()
    {
        await using var lab = await SaveLab.CreateAsync();
        var (ns, name, directory) = (lab.Namespace, lab.Name, lab.Directory);
        string file = Path.Combine(directory, name + ".conf");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nListenPort = 51999\n");
        var link = await ns.ExecAsync("ip", ["link", "add", "dé", "type", "veth", "peer", "name", "fzt-veth"], timeout: Bound);
        Assert.True(link.ExitCode == 0, link.Stderr);
        await using var daemon = DaemonProcess.Start(ns, name, "up", file);
        await daemon.WaitReadyAsync();
        var set = await ns.ExecAsync("wg", ["set", name, "peer", PeerA.ToBase64(), "endpoint", "[fe80::1%dé]:51820"], timeout: Bound);
        Assert.True(set.ExitCode == 0, set.Stderr);
        var show = await ns.ExecAsync("wg", ["show", name, "endpoints"], timeout: Bound);
        Assert.Equal($"{PeerA.ToBase64()}\t[fe80::1%dé]:51820\n", show.Stdout);
        var save = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", name], timeout: Bound);
        Assert.True(save.ExitCode == 0, save.Stderr);
        Assert.Contains("\nEndpoint = [fe80::1%dé]:51820\n", await File.ReadAllTextAsync(file));
    }

    /// <summary>
    /// The zone is named by the interface's name also when that interface has no IPv6 address (a
    /// veth that is down), as wg showconf prints it (getnameinfo, if_indextoname); once no interface
    /// has that index (deleted since), by the number, as Go's net package writes such a zone.
    /// </summary>
    [Fact]
    public async Task A_link_local_endpoint_on_an_interface_without_an_address_is_saved_by_its_name_and_by_its_index_once_deleted()
    {
        await using var lab = await SaveLab.CreateAsync();
        var (ns, name, directory) = (lab.Namespace, lab.Name, lab.Directory);
        string file = Path.Combine(directory, name + ".conf");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nListenPort = 51999\n");
        var link = await ns.ExecAsync("ip", ["link", "add", "fzt-dz0", "type", "veth", "peer", "name", "fzt-dz1"], timeout: Bound);
        Assert.True(link.ExitCode == 0, link.Stderr);
        var index = await ns.ExecAsync("cat", ["/sys/class/net/fzt-dz0/ifindex"], timeout: Bound);
        Assert.True(index.ExitCode == 0, index.Stderr);
        await using var daemon = DaemonProcess.Start(ns, name, "up", file);
        await daemon.WaitReadyAsync();
        var set = await ns.ExecAsync("wg", ["set", name, "peer", PeerA.ToBase64(), "endpoint", "[fe80::1%fzt-dz0]:51820"], timeout: Bound);
        Assert.True(set.ExitCode == 0, set.Stderr);
        var show = await ns.ExecAsync("wg", ["showconf", name], timeout: Bound);
        Assert.Contains("\nEndpoint = [fe80::1%fzt-dz0]:51820\n", show.Stdout);
        var save = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", name], timeout: Bound);
        Assert.True(save.ExitCode == 0, save.Stderr);
        Assert.Contains("\nEndpoint = [fe80::1%fzt-dz0]:51820\n", await File.ReadAllTextAsync(file));

        var delete = await ns.ExecAsync("ip", ["link", "delete", "fzt-dz0"], timeout: Bound);
        Assert.True(delete.ExitCode == 0, delete.Stderr);
        save = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", name], timeout: Bound);
        Assert.True(save.ExitCode == 0, save.Stderr);
        Assert.Contains($"\nEndpoint = [fe80::1%{index.Stdout.Trim()}]:51820\n", await File.ReadAllTextAsync(file));
    }

    /// <summary>Saves at once share one FILE.tmp: one at a time, each answered, the file whole.</summary>
    [Fact]
    public async Task Saves_at_once_each_succeed_and_leave_one_whole_file()
    {
        await using var lab = await SaveLab.CreateAsync();
        var (ns, name, directory) = (lab.Namespace, lab.Name, lab.Directory);
        string file = Path.Combine(directory, name + ".conf");
        var privateKey = TestKeys.New();
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {privateKey.ToBase64()}\nListenPort = 51999\n");
        await using var daemon = DaemonProcess.Start(ns, name, "up", file);
        await daemon.WaitReadyAsync();
        Assert.Equal(0, (await ns.ExecAsync("wg", ["set", name, "peer", PeerA.ToBase64()], timeout: Bound)).ExitCode);
        var saves = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", name], timeout: Bound)));
        Assert.All(saves, save => Assert.True(save.ExitCode == 0, save.Stderr));
        Assert.Equal($"[Interface]\nListenPort = 51999\nPrivateKey = {privateKey.ToBase64()}\n\n[Peer]\nPublicKey = {PeerA.ToBase64()}\n", await File.ReadAllTextAsync(file));
        Assert.False(File.Exists(file + ".tmp"));
    }

    [Fact]
    public async Task Save_names_why_it_cannot_save()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        await daemon.WaitReadyAsync();
        var save = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", name], timeout: Bound);
        Assert.Equal(1, save.ExitCode);
        Assert.Equal($"firezone-tunnel: {name}: not saved: not started from a configuration file (firezone-tunnel up FILE): there is no file to save to\n", save.Stderr);

        var path = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", "/etc/wireguard/wg7.conf"], timeout: Bound);
        Assert.Equal(2, path.ExitCode);
        Assert.Equal("firezone-tunnel: save takes the interface, not a file (firezone-tunnel save wg7): its daemon saves to the file it was started from\n", path.Stderr);

        var missing = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", "fzt-none"], timeout: Bound);
        Assert.Equal(1, missing.ExitCode);
        Assert.Equal("firezone-tunnel: fzt-none: no such interface (is its daemon running?)\n", missing.Stderr);

        await using var go = await WireGuardGoUapi.StartAsync();
        var foreign = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", go.Name], timeout: Bound);
        Assert.Equal(1, foreign.ExitCode);
        Assert.Equal($"firezone-tunnel: {go.Name}: its daemon does not answer fz_save (not firezone-tunnel; wireguard-go?): use wg-quick save {go.Name}\n", foreign.Stderr);
    }

    /// <summary>
    /// A file the daemon cannot write is named with the problem in plain words, as a file it cannot
    /// read is: not .NET's text about FILE.tmp ("Read-only file system : '/etc/wireguard/wg0.conf.tmp'").
    /// The daemon runs in a mount namespace of its own with the file's directory bind-mounted
    /// read-only; then FILE.tmp is a directory (left there by hand), which cannot be replaced.
    /// </summary>
    [Fact]
    public async Task Save_names_the_file_and_why_it_cannot_be_written()
    {
        await using var lab = await SaveLab.CreateAsync();
        var (ns, name, directory) = (lab.Namespace, lab.Name, lab.Directory);
        string file = Path.Combine(directory, name + ".conf");
        string text = $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nListenPort = 51999\n";
        await File.WriteAllTextAsync(file, text);
        string[] readOnly = ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -o bind,ro \"$0\" \"$0\" && exec \"$@\"", directory];
        await using (var daemon = DaemonProcess.StartUnder(ns, name, readOnly, "up", file))
        {
            await daemon.WaitReadyAsync();
            var save = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", name], timeout: Bound);
            Assert.Equal(1, save.ExitCode);
            Assert.Equal($"firezone-tunnel: {name}: not saved: {file}: cannot write the file: read-only file system\n", save.Stderr);
            Assert.Contains($"firezone-tunnel save: not saved: {file}: cannot write the file: read-only file system", await File.ReadAllTextAsync(daemon.LogFile));
        }
        Assert.Equal(text, await File.ReadAllTextAsync(file));

        Directory.CreateDirectory(file + ".tmp");
        await using (var daemon = DaemonProcess.Start(ns, name, "up", file))
        {
            await daemon.WaitReadyAsync();
            var save = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["save", name], timeout: Bound);
            Assert.Equal(1, save.ExitCode);
            Assert.Equal($"firezone-tunnel: {name}: not saved: {file}: cannot write the file: {file}.tmp, where it is written first, is a directory\n", save.Stderr);
        }
        Assert.Equal(text, await File.ReadAllTextAsync(file));
    }

    /// <summary>
    /// As wg-quick down, which reads the file again: a SaveConfig set since the start saves (with the
    /// file's settings as they read now), one taken out since the start does not. A symbolic link
    /// stays a link and its target is written, as wg-quick works on <c>readlink -f</c> of the file.
    /// </summary>
    [Fact]
    public async Task The_stop_reads_the_file_again_and_follows_a_symbolic_link()
    {
        await using var lab = await SaveLab.CreateAsync();
        var (ns, name, directory) = (lab.Namespace, lab.Name, lab.Directory);
        string target = Path.Combine(directory, "real", "tunnel.conf");
        string link = Path.Combine(directory, name + ".conf");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var privateKey = TestKeys.New();
        string head = $"[Interface]\nPrivateKey = {privateKey.ToBase64()}\nListenPort = 51999\n";
        await File.WriteAllTextAsync(target, head);
        File.CreateSymbolicLink(link, Path.Combine("real", "tunnel.conf"));
        await using (var daemon = DaemonProcess.Start(ns, name, "up", link))
        {
            await daemon.WaitReadyAsync();
            Assert.Equal(0, (await ns.ExecAsync("wg", ["set", name, "peer", PeerA.ToBase64()], timeout: Bound)).ExitCode);
            await File.WriteAllTextAsync(target, head + "Table = 1234\nSaveConfig = true\nPostDown = echo edited\n");
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
        }
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.Equal($"[Interface]\nTable = 1234\nSaveConfig = true\nPostDown = echo edited\nListenPort = 51999\nPrivateKey = {privateKey.ToBase64()}\n\n"
            + $"[Peer]\nPublicKey = {PeerA.ToBase64()}\n", await File.ReadAllTextAsync(target));

        string edited = head + "SaveConfig = false\n";
        await using (var daemon = DaemonProcess.Start(ns, name, "up", link))
        {
            await daemon.WaitReadyAsync();
            await File.WriteAllTextAsync(target, edited);
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            Assert.Contains($"SaveConfig: {link} says SaveConfig = false now: not saved", await File.ReadAllTextAsync(daemon.LogFile));
        }
        Assert.Equal(edited, await File.ReadAllTextAsync(target));

        // A file that no longer reads is left as it is, not overwritten with the settings it had at the start.
        string broken = head + "SaveConfig = true\n[Peer]\nPublicKy = x\n";
        await File.WriteAllTextAsync(target, head + "SaveConfig = true\n");
        await using (var daemon = DaemonProcess.Start(ns, name, "up", link))
        {
            await daemon.WaitReadyAsync();
            await File.WriteAllTextAsync(target, broken);
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(Bound));
            Assert.Contains($"SaveConfig: {link} not saved: it no longer reads ({link}:6: unknown key", await File.ReadAllTextAsync(daemon.LogFile));
        }
        Assert.Equal(broken, await File.ReadAllTextAsync(target));
    }

    /// <summary>A namespace, an interface name and a directory for its file; removed on dispose, also when the test failed.</summary>
    private sealed class SaveLab : IAsyncDisposable
    {
        private SaveLab(NetworkNamespace ns) => Namespace = ns;

        public NetworkNamespace Namespace { get; }

        public string Name { get; } = UapiServerFixture.UniqueName();

        public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("fz-save-").FullName;

        public static async Task<SaveLab> CreateAsync() => new(await NetworkNamespace.CreateAsync());

        public async ValueTask DisposeAsync()
        {
            await Namespace.DisposeAsync();
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    /// <summary>wireguard-go detaches from wg-quick; a test that failed half-way stops it by PID.</summary>
    private static async Task StopLeftoversAsync(NetworkNamespace ns)
    {
        var pids = await ProcessRunner.RunAsync("ip", ["netns", "pids", ns.Name], timeout: TimeSpan.FromSeconds(15));
        foreach (string line in pids.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int pid = int.Parse(line, System.Globalization.CultureInfo.InvariantCulture);
            LibC.kill(pid, SIGTERM);
        }
    }
}
