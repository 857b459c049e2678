using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// firezone-tunnel (`-f`) in namespace A and Debian's wireguard-go in namespace B, joined by a veth
/// pair (192.168.S.1 and .2), each configured with `wg set` as a user would: tunnel addresses
/// 10.S.0.1 and 10.S.0.2, A on UDP port 51000 + S, B on 52000 + S. B always knows A's endpoint;
/// A knows B's only when <c>endpointAtA</c> (otherwise it learns it from B's first handshake).
/// Dispose stops both daemons by PID (wireguard-go through its socket, then by PID) and deletes the
/// namespaces, key files and sockets, also when the set-up itself failed. With <c>renameTo</c>, our
/// interface is renamed after the daemon started and before it has a key (<see cref="OursLink"/>
/// is then its name for ip(8); `wg` still reaches the daemon by its socket's name, <see cref="Ours"/>).
/// </summary>
internal sealed class WireGuardGoPair : IAsyncDisposable
{
    private readonly List<string> _files = [];
    private NetworkNamespace? _a;
    private NetworkNamespace? _b;
    private DaemonProcess? _daemon;
    private DetachedDaemon? _go;

    private WireGuardGoPair(int subnet)
    {
        string suffix = Guid.NewGuid().ToString("N")[..6];
        Subnet = subnet;
        Ours = "fza" + suffix;
        OursLink = Ours;
        Theirs = "fzb" + suffix;
    }

    public int Subnet { get; }

    /// <summary>Our interface (namespace A) and its UAPI socket's name.</summary>
    public string Ours { get; }

    /// <summary>Our interface's link name now: <see cref="Ours"/> unless it was renamed.</summary>
    public string OursLink { get; private set; }

    /// <summary>wireguard-go's interface (namespace B).</summary>
    public string Theirs { get; }

    public NetworkNamespace A => _a!;

    public NetworkNamespace B => _b!;

    public DaemonProcess Daemon => _daemon!;

    /// <summary>The veth in A (ours) and its peer in B (wireguard-go's).</summary>
    public string VethA => "fzv" + Ours[3..];

    public string VethB => "fzw" + Ours[3..];

    public ushort PortA => (ushort)(51000 + Subnet);

    public ushort PortB => (ushort)(52000 + Subnet);

    public string UnderlayA => $"192.168.{Subnet}.1";

    public string UnderlayB => $"192.168.{Subnet}.2";

    public string TunnelA => $"10.{Subnet}.0.1";

    public string TunnelB => $"10.{Subnet}.0.2";

    public string PublicB { get; private set; } = "";

    public static async Task<WireGuardGoPair> StartAsync(int subnet, bool endpointAtA = true, string? renameTo = null)
    {
        var pair = new WireGuardGoPair(subnet);
        try
        {
            await pair.SetUpAsync(endpointAtA, renameTo);
            return pair;
        }
        catch
        {
            await pair.DisposeAsync();
            throw;
        }
    }

    public static async Task OkAsync(NetworkNamespace ns, string file, params string[] arguments)
    {
        var result = await ns.ExecAsync(file, arguments, timeout: TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, $"{file} {string.Join(' ', arguments)}: {result.Stderr}");
    }

    private async Task SetUpAsync(bool endpointAtA, string? renameTo)
    {
        _a = await NetworkNamespace.CreateAsync();
        _b = await NetworkNamespace.CreateAsync();
        string vethA = VethA, vethB = VethB;
        var keyA = TestKeys.New();
        var keyB = TestKeys.New();
        string keyFileA = Path.Combine(Path.GetTempPath(), $"fzt-{Ours}.key"), keyFileB = Path.Combine(Path.GetTempPath(), $"fzt-{Theirs}.key");
        _files.AddRange([keyFileA, keyFileB, UapiSocketPath.For(Theirs)]);
        await File.WriteAllTextAsync(keyFileA, keyA.ToBase64());
        await File.WriteAllTextAsync(keyFileB, keyB.ToBase64());
        string publicA = (await ProcessRunner.RunAsync("wg", ["pubkey"], stdin: keyA.ToBase64())).Stdout.Trim();
        PublicB = (await ProcessRunner.RunAsync("wg", ["pubkey"], stdin: keyB.ToBase64())).Stdout.Trim();
        _daemon = DaemonProcess.Start(A, Ours, "-f", Ours);

        await OkAsync(A, "ip", "link", "add", vethA, "type", "veth", "peer", "name", vethB, "netns", B.Name);
        await OkAsync(A, "ip", "address", "add", UnderlayA + "/24", "dev", vethA);
        await OkAsync(A, "ip", "link", "set", vethA, "up");
        await OkAsync(B, "ip", "address", "add", UnderlayB + "/24", "dev", vethB);
        await OkAsync(B, "ip", "link", "set", vethB, "up");

        await Daemon.WaitReadyAsync();
        if (renameTo is not null)
        {
            await RenameOursAsync(renameTo);
        }
        string[] endpoint = endpointAtA ? ["endpoint", $"{UnderlayB}:{PortB}"] : [];
        await OkAsync(A, "wg", ["set", Ours, "private-key", keyFileA, "listen-port", Port(PortA), "peer", PublicB,
            .. endpoint, "allowed-ips", TunnelB + "/32"]);
        await OkAsync(A, "ip", "address", "add", TunnelA + "/24", "dev", OursLink);
        await OkAsync(A, "ip", "link", "set", OursLink, "up");

        var go = await B.ExecAsync("wireguard-go", [Theirs], timeout: TimeSpan.FromSeconds(30));
        if (File.Exists(UapiSocketPath.For(Theirs)))
        {
            _go = await DetachedDaemon.FromWireGuardGoSocketAsync(UapiSocketPath.For(Theirs), B);
        }
        Assert.True(go.ExitCode == 0, go.Stderr);
        await OkAsync(B, "wg", "set", Theirs, "private-key", keyFileB, "listen-port", Port(PortB), "peer", publicA,
            "endpoint", $"{UnderlayA}:{PortA}", "allowed-ips", TunnelA + "/32");
        await OkAsync(B, "ip", "address", "add", TunnelB + "/24", "dev", Theirs);
        await OkAsync(B, "ip", "link", "set", Theirs, "up");
    }

    /// <summary>`ip link set OURS name NEW` (the link must be down for it); the daemon keeps its socket's name.</summary>
    public async Task RenameOursAsync(string name)
    {
        await OkAsync(A, "ip", "link", "set", OursLink, "down");
        await OkAsync(A, "ip", "link", "set", OursLink, "name", name);
        OursLink = name;
    }

    /// <summary>Our peer's line of `wg show OURS dump`: public key, psk, endpoint, allowed ips, handshake, rx, tx, keepalive.</summary>
    public async Task<string[]> OurPeerDumpAsync()
    {
        var dump = await ProcessRunner.WgAsync("show", Ours, "dump");
        Assert.True(dump.ExitCode == 0, dump.Stderr);
        var lines = dump.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length); // the interface, then the one peer
        return lines[1].Split('\t');
    }

    private static string Port(ushort port) => port.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        // Removing its socket stops wireguard-go; past a bound it is killed by PID.
        if (_go is not null)
        {
            await _go.DisposeAsync();
        }
        foreach (var file in _files)
        {
            File.Delete(file);
        }
        if (_daemon is not null)
        {
            await _daemon.DisposeAsync();
        }
        if (_b is not null)
        {
            await _b.DisposeAsync();
        }
        if (_a is not null)
        {
            await _a.DisposeAsync();
        }
    }
}
