using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Host.Tunnel;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The TUN's MTU reaches the engine, also when wg-quick sets it after the key (ip link set mtu after
/// wg setconf): an MTU-sized inner packet is padded no further than the MTU (whitepaper section
/// 5.4.6), so its datagram (MTU + 32 bytes of WireGuard framing) fits a path of MTU + 60 without
/// fragmentation; and a jumbo MTU gets buffers that hold its packets.
/// </summary>
public sealed class MtuTests
{
    [Theory]
    [InlineData(1280, 2048)]
    [InlineData(1420, 2048)]
    [InlineData(1500, 2048)]
    [InlineData(1936, 2048)] // 32 + 32 + 1936 + 16 + 32 = 2048 exactly
    [InlineData(1937, 2112)]
    [InlineData(9000, 9152)]
    [InlineData(65535, 65664)]
    public void Buffers_hold_an_mtu_sized_packet_with_framing_and_padding(int mtu, int expected)
    {
        int size = PacketBufferSizing.BufferSizeFor(mtu);
        Assert.Equal(expected, size);
        Assert.Equal(0, size % 64);
        Assert.True(PacketBufferSizing.MaxMtuFor(size) >= mtu);
        // A received datagram (header, MTU, padding, tag) at Headroom, with the tailroom free.
        Assert.True(size - PacketBuffer.Headroom - PacketBuffer.Tailroom >= 16 + mtu + 15 + 16);
    }

    private static async Task<int> LinkMtuAsync(NetworkNamespace ns, string name)
    {
        var link = await ns.ExecAsync("ip", ["-j", "link", "show", name], timeout: TimeSpan.FromSeconds(15));
        Assert.True(link.ExitCode == 0, link.Stderr);
        using var json = System.Text.Json.JsonDocument.Parse(link.Stdout);
        return json.RootElement[0].GetProperty("mtu").GetInt32();
    }

    [Fact]
    public async Task A_new_interface_gets_wireguard_gos_default_mtu_and_a_rebuild_keeps_the_users()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzd" + Guid.NewGuid().ToString("N")[..8];
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        await File.WriteAllTextAsync(keyFile, TestKeys.New().ToBase64());
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        try
        {
            await daemon.WaitReadyAsync();
            // wireguard-go's DefaultMTU, not the kernel's 1500 for a TUN device.
            Assert.Equal(ActorTunnelControl.DefaultMtu, await LinkMtuAsync(ns, name));
            await OkAsync(ns, "ip", "link", "set", name, "mtu", "1380");
            // A private key starts (and a second one rebuilds) the tunnel, which reopens the TUN device.
            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "private-key", keyFile)).ExitCode);
            await File.WriteAllTextAsync(keyFile, TestKeys.New().ToBase64());
            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "private-key", keyFile)).ExitCode);
            Assert.Equal(1380, await LinkMtuAsync(ns, name));
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    [Theory]
    [InlineData(1420)]
    [InlineData(9000)]
    [InlineData(65535)]
    public void Pool_memory_stays_bounded_for_any_accepted_mtu(int mtu)
    {
        var pool = PacketBufferSizing.PoolFor(mtu);
        Assert.True(pool.BufferSize >= PacketBufferSizing.BufferSizeFor(mtu));
        Assert.True((long)pool.MaxBuffers * pool.BufferSize <= Math.Max(PacketBufferSizing.MaxPoolBytes, (long)PacketBufferSizing.MinBuffers * pool.BufferSize));
        Assert.True(pool.MaxBuffers >= PacketBufferSizing.MinBuffers);
        var buffer = pool.Rent();
        Assert.True(buffer.MaxPacketLength >= mtu + PacketBufferSizing.TransportOverhead + PacketBufferSizing.MaxPadding);
        buffer.Return();
        Assert.Equal(0, pool.Outstanding);
    }

    private static async Task OkAsync(NetworkNamespace ns, string file, params string[] arguments)
    {
        var result = await ns.ExecAsync(file, arguments, timeout: TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, $"{file} {string.Join(' ', arguments)}: {result.Stderr}");
    }

    /// <summary>Ip: FragCreates + FragFails of the namespace (RFC 4293 ipSystemStatsOutFragCreates/OutFragFails).</summary>
    private static async Task<long> FragmentationCountAsync(NetworkNamespace ns)
    {
        var snmp = await ns.ExecAsync("cat", ["/proc/net/snmp"], timeout: TimeSpan.FromSeconds(15));
        var lines = snmp.Stdout.Split('\n');
        for (int i = 0; i + 1 < lines.Length; i++)
        {
            if (lines[i].StartsWith("Ip: Forwarding", StringComparison.Ordinal))
            {
                var names = lines[i].Split(' ');
                var values = lines[i + 1].Split(' ');
                return long.Parse(values[Array.IndexOf(names, "FragCreates")]) + long.Parse(values[Array.IndexOf(names, "FragFails")]);
            }
        }
        throw new InvalidOperationException("no Ip: line in /proc/net/snmp: " + snmp.Stdout);
    }

    [Theory]
    [InlineData(1420)]
    [InlineData(9000)]
    public async Task A_full_mtu_packet_set_after_start_crosses_without_fragmentation(int mtu)
    {
        await using var a = await NetworkNamespace.CreateAsync();
        await using var b = await NetworkNamespace.CreateAsync();
        string suffix = Guid.NewGuid().ToString("N")[..6];
        string fz = "fzm" + suffix, wgo = "fzn" + suffix, vethA = "fzma" + suffix, vethB = "fzmb" + suffix;
        string outerMtu = (mtu + 60).ToString(System.Globalization.CultureInfo.InvariantCulture);
        string tunMtu = mtu.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var keyA = TestKeys.New();
        var keyB = TestKeys.New();
        string keyFileA = Path.Combine(Path.GetTempPath(), $"fzt-{fz}.key"), keyFileB = Path.Combine(Path.GetTempPath(), $"fzt-{wgo}.key");
        await File.WriteAllTextAsync(keyFileA, keyA.ToBase64());
        await File.WriteAllTextAsync(keyFileB, keyB.ToBase64());
        string publicA = (await ProcessRunner.RunAsync("wg", ["pubkey"], stdin: keyA.ToBase64())).Stdout.Trim();
        string publicB = (await ProcessRunner.RunAsync("wg", ["pubkey"], stdin: keyB.ToBase64())).Stdout.Trim();
        await using var daemon = DaemonProcess.Start(a, fz, "-f", fz);
        DetachedDaemon? goDaemon = null;
        try
        {
            await OkAsync(a, "ip", "link", "add", vethA, "type", "veth", "peer", "name", vethB, "netns", b.Name);
            // The outer path fits exactly: IPv4 (20) + UDP (8) + WireGuard header (16) + MTU + tag (16).
            await OkAsync(a, "ip", "link", "set", vethA, "mtu", outerMtu);
            await OkAsync(b, "ip", "link", "set", vethB, "mtu", outerMtu);
            await OkAsync(a, "ip", "address", "add", "192.168.78.1/24", "dev", vethA);
            await OkAsync(a, "ip", "link", "set", vethA, "up");
            await OkAsync(b, "ip", "address", "add", "192.168.78.2/24", "dev", vethB);
            await OkAsync(b, "ip", "link", "set", vethB, "up");

            await daemon.WaitReadyAsync();
            // wg-quick's order: the configuration first, then the MTU and the link.
            await OkAsync(a, "wg", "set", fz, "private-key", keyFileA, "listen-port", "51011", "peer", publicB,
                "endpoint", "192.168.78.2:51012", "allowed-ips", "10.98.0.2/32");
            await OkAsync(a, "ip", "address", "add", "10.98.0.1/24", "dev", fz);
            await OkAsync(a, "ip", "link", "set", fz, "mtu", tunMtu, "up");
            // A UAPI get re-reads the MTU, so after this the engine has it (no waiting on the poll).
            Assert.Equal(0, (await ProcessRunner.WgAsync("show", fz)).ExitCode);

            var go = await b.ExecAsync("wireguard-go", [wgo], timeout: TimeSpan.FromSeconds(30));
            if (File.Exists(UapiSocketPath.For(wgo)))
            {
                goDaemon = await DetachedDaemon.FromWireGuardGoSocketAsync(UapiSocketPath.For(wgo), b);
            }
            Assert.True(go.ExitCode == 0, go.Stderr);
            await OkAsync(b, "wg", "set", wgo, "private-key", keyFileB, "listen-port", "51012", "peer", publicA,
                "endpoint", "192.168.78.1:51011", "allowed-ips", "10.98.0.1/32");
            await OkAsync(b, "ip", "address", "add", "10.98.0.2/24", "dev", wgo);
            await OkAsync(b, "ip", "link", "set", wgo, "mtu", tunMtu, "up");

            // Small pings complete the handshake first.
            var warm = await a.ExecAsync("ping", ["-c", "3", "-W", "5", "10.98.0.2"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(warm.ExitCode == 0, warm.Stdout + warm.Stderr + await File.ReadAllTextAsync(daemon.LogFile));
            long before = await FragmentationCountAsync(a);
            // ICMP payload so that the inner IPv4 packet is exactly the MTU: 20 + 8 + payload.
            string payload = (mtu - 28).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var ping = await a.ExecAsync("ping", ["-c", "3", "-W", "5", "-M", "do", "-s", payload, "10.98.0.2"], timeout: TimeSpan.FromSeconds(40));
            if (ping.ExitCode != 0)
            {
                // Which side dropped it: the links' counters and both ends' transfer counts.
                string diag = (await a.ExecAsync("ip", ["-s", "-s", "link"])).Stdout + (await b.ExecAsync("ip", ["-s", "-s", "link"])).Stdout
                    + (await ProcessRunner.WgAsync("show", wgo)).Stdout
                    + (await ProcessRunner.RunAsync(DaemonProcess.Executable, ["show", fz])).Stdout;
                Assert.Fail(ping.Stdout + ping.Stderr + diag);
            }
            // Padding beyond the MTU would make the datagram 4 bytes too long for the path.
            Assert.Equal(before, await FragmentationCountAsync(a));
        }
        finally
        {
            // Removing its socket stops wireguard-go; past a bound it is killed by PID.
            if (goDaemon is not null)
            {
                await goDaemon.DisposeAsync();
            }
            LeftoverFile.Delete(UapiSocketPath.For(wgo));
            File.Delete(keyFileA);
            File.Delete(keyFileB);
        }
    }

    /// <summary>
    /// <c>up</c> without an MTU key sets the MTU wg-quick sets (set_mtu_up): the largest MTU on the
    /// way to the peers' endpoints, or without endpoints (a Gateway's Clients) the default route's,
    /// less 80. It set 1420 whatever the path: on a 1460-byte cloud network or a 1400-byte link,
    /// full-sized packets became datagrams the path could not carry, where wg-quick's interface fit.
    /// Here a 9000-byte link holds the default route, so only the endpoint's route gives 1320.
    /// </summary>
    [Theory]
    [InlineData(true, 1320)]
    [InlineData(false, 8920)]
    public async Task Up_without_an_MTU_key_sets_what_wg_quick_computes_from_the_path(bool endpoint, int expected)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        foreach (string[] command in (string[][])[
            ["link", "add", "fzpath", "mtu", "1400", "type", "veth", "peer", "name", "fzpath-end", "mtu", "1400"],
            ["link", "set", "fzpath", "up"], ["link", "set", "fzpath-end", "up"],
            ["address", "add", "192.0.2.1/24", "dev", "fzpath"],
            ["link", "add", "fzjumbo", "mtu", "9000", "type", "veth", "peer", "name", "fzjumbo-end", "mtu", "9000"],
            ["link", "set", "fzjumbo", "up"], ["link", "set", "fzjumbo-end", "up"],
            ["address", "add", "198.51.100.1/24", "dev", "fzjumbo"], ["route", "add", "default", "via", "198.51.100.254"]])
        {
            var ip = await ns.ExecAsync("ip", command, timeout: TimeSpan.FromSeconds(10));
            Assert.True(ip.ExitCode == 0, ip.Stderr);
        }
        string peer = $"[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.9.0.2/32\n" + (endpoint ? "Endpoint = 192.0.2.2:51820\n" : "");
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.9.0.1/24\n{peer}");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", file);
            await daemon.WaitReadyAsync();
            var link = await ns.ExecAsync("ip", ["-o", "link", "show", name], timeout: TimeSpan.FromSeconds(10));
            Assert.True(link.ExitCode == 0, link.Stderr);
            Assert.Contains($" mtu {expected} ", link.Stdout);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// An IPv6 Address on a path whose MTU gives wg-quick's rule less than 1280 (a 1340-byte link:
    /// 1260): the kernel disables IPv6 on a link below 1280, so the route of the Address's subnet
    /// could not be added, and the start failed with ip's `No such device` under `AllowedIPs`, which
    /// named neither the MTU nor IPv6 (wg-quick fails the same way). Now it says why and what to set.
    /// </summary>
    [Fact]
    public async Task Up_whose_automatic_MTU_is_below_the_IPv6_minimum_says_so_and_what_to_set()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        foreach (string[] command in (string[][])[
            ["link", "add", "fzpath", "mtu", "1340", "type", "veth", "peer", "name", "fzpath-end", "mtu", "1340"],
            ["link", "set", "fzpath", "up"], ["link", "set", "fzpath-end", "up"],
            ["address", "add", "192.0.2.1/24", "dev", "fzpath"]])
        {
            var ip = await ns.ExecAsync("ip", command, timeout: TimeSpan.FromSeconds(10));
            Assert.True(ip.ExitCode == 0, ip.Stderr);
        }
        await File.WriteAllTextAsync(file, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nAddress = 10.9.0.1/24, fd09::1/64\n"
            + $"[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.9.0.2/32, fd09::2/128\nEndpoint = 192.0.2.2:51820\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", file);
            Assert.NotEqual(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            string stderr = await daemon.Stderr;
            Assert.Contains($"{file}:3: Address fd09::1/64 is IPv6, and the MTU wg-quick's rule gives {name} here, 1260 (1340 on the way to the peers' endpoints, or of the default route, less 80), is below 1280", stderr);
            Assert.Contains("set MTU = 1280 in [Interface]", stderr);
            Assert.DoesNotContain("RTNETLINK", stderr);
            var link = await ns.ExecAsync("ip", ["-o", "link", "show", name], timeout: TimeSpan.FromSeconds(10));
            Assert.NotEqual(0, link.ExitCode);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
