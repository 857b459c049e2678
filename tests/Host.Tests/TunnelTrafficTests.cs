using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The composed daemon carries traffic: firezone-tunnel in one namespace, Debian's wireguard-go in
/// another, joined by a veth pair; ping across the tunnel, then `wg show` and `firezone-tunnel show`
/// report the handshake and transfer. Also: losing the TUN device stops the daemon with an error.
/// </summary>
public sealed class TunnelTrafficTests
{
    private static async Task OkAsync(NetworkNamespace ns, string file, params string[] arguments)
    {
        var result = await ns.ExecAsync(file, arguments, timeout: TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, $"{file} {string.Join(' ', arguments)}: {result.Stderr}");
    }

    [Fact]
    public async Task Ping_crosses_a_tunnel_to_wireguard_go_and_show_reports_it()
    {
        await using var a = await NetworkNamespace.CreateAsync();
        await using var b = await NetworkNamespace.CreateAsync();
        string suffix = Guid.NewGuid().ToString("N")[..6];
        string fz = "fza" + suffix, wgo = "fzb" + suffix, vethA = "fzva" + suffix, vethB = "fzvb" + suffix;
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
            await OkAsync(a, "ip", "address", "add", "192.168.77.1/24", "dev", vethA);
            await OkAsync(a, "ip", "link", "set", vethA, "up");
            await OkAsync(b, "ip", "address", "add", "192.168.77.2/24", "dev", vethB);
            await OkAsync(b, "ip", "link", "set", vethB, "up");

            await daemon.WaitReadyAsync();
            await OkAsync(a, "wg", "set", fz, "private-key", keyFileA, "listen-port", "51001", "peer", publicB,
                "endpoint", "192.168.77.2:51002", "allowed-ips", "10.99.0.2/32");
            await OkAsync(a, "ip", "address", "add", "10.99.0.1/24", "dev", fz);

            var go = await b.ExecAsync("wireguard-go", [wgo], timeout: TimeSpan.FromSeconds(30));
            if (File.Exists(UapiSocketPath.For(wgo)))
            {
                goDaemon = DetachedDaemon.FromSocket(UapiSocketPath.For(wgo));
            }
            Assert.True(go.ExitCode == 0, go.Stderr);
            await OkAsync(b, "wg", "set", wgo, "private-key", keyFileB, "listen-port", "51002", "peer", publicA,
                "endpoint", "192.168.77.1:51001", "allowed-ips", "10.99.0.1/32");
            await OkAsync(b, "ip", "address", "add", "10.99.0.2/24", "dev", wgo);
            await OkAsync(b, "ip", "link", "set", wgo, "up");

            var ping = await a.ExecAsync("ping", ["-c", "3", "-W", "5", "10.99.0.2"], timeout: TimeSpan.FromSeconds(40));
            Assert.True(ping.ExitCode == 0, ping.Stdout + ping.Stderr);

            string shown = (await ProcessRunner.WgAsync("show", fz)).Stdout;
            Assert.Contains("latest handshake:", shown);
            Assert.Contains("transfer:", shown);
            var show = await ProcessRunner.RunAsync(DaemonProcess.Executable, ["show", fz]);
            Assert.Contains("ecn mode: normal", show.Stdout);
            Assert.Contains("latest handshake:", show.Stdout);
        }
        finally
        {
            // Removing its socket stops wireguard-go; past a bound it is killed by PID.
            if (goDaemon is not null)
            {
                await goDaemon.DisposeAsync();
            }
            File.Delete(UapiSocketPath.For(wgo));
            File.Delete(keyFileA);
            File.Delete(keyFileB);
        }
    }

    [Fact]
    public async Task Losing_the_TUN_device_stops_the_daemon_with_an_error()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzl" + Guid.NewGuid().ToString("N")[..8];
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        await File.WriteAllTextAsync(keyFile, TestKeys.New().ToBase64());
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        try
        {
            await daemon.WaitReadyAsync();
            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "private-key", keyFile)).ExitCode);
            await OkAsync(ns, "ip", "link", "delete", name);
            Assert.Equal(1, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)));
            Assert.Contains("TUN device", await daemon.Stderr);
            Assert.False(File.Exists(daemon.SocketPath));
        }
        finally
        {
            File.Delete(keyFile);
        }
    }
}
