using System.Text.RegularExpressions;
using Firezone.Actors.Host.Logging;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// packaging/firezone-tunnel@.service and the install layout the README gives. systemd is not PID 1
/// where the tests run, so the unit cannot be started; `systemd-analyze verify` loads it as systemd
/// would (unknown keys, bad values, a missing executable), and the directives that make it start on
/// a fresh machine are checked one by one.
/// </summary>
public sealed class PackagingTests
{
    private const string InstalledExecutable = "/usr/local/bin/firezone-tunnel";

    private static readonly string Executable = Path.Combine(AppContext.BaseDirectory, "firezone-tunnel");

    private static string UnitPath => RepositoryFile.Find("packaging/firezone-tunnel@.service");

    /// <summary>The [Service] section's settings, each key with its values in order (a key may repeat).</summary>
    private static Dictionary<string, List<string>> ServiceSettings()
    {
        var settings = new Dictionary<string, List<string>>();
        string? section = null;
        foreach (string raw in File.ReadAllLines(UnitPath))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }
            if (line[0] == '[')
            {
                section = line;
                continue;
            }
            if (section == "[Service]" && line.IndexOf('=') is > 0 and var equals)
            {
                string key = line[..equals];
                if (!settings.TryGetValue(key, out var values))
                {
                    settings[key] = values = [];
                }
                values.Add(line[(equals + 1)..]);
            }
        }
        return settings;
    }

    [Fact]
    public void Systemd_creates_the_socket_and_log_directories_the_daemon_uses()
    {
        var service = ServiceSettings();
        // ProtectSystem=strict makes everything else read-only; these two must still be writable.
        Assert.Equal(["strict"], service["ProtectSystem"]);
        // /var/run is /run: RuntimeDirectory=wireguard is where the daemon puts its socket and wg looks;
        // /run/firezone-tunnel holds the network setup's record for a restart after an unclean exit.
        Assert.Equal("/var/run/wireguard", UapiSocketPath.DefaultDirectory);
        Assert.Equal("/run/firezone-tunnel", Network.NetworkSetupStateFile.DefaultDirectory);
        Assert.Equal(["wireguard firezone-tunnel"], service["RuntimeDirectory"]);
        // dotnet-counters finds a service's diagnostics socket in the real /tmp only.
        Assert.False(service.ContainsKey("PrivateTmp"));
        Assert.Equal(["0755"], service["RuntimeDirectoryMode"]);
        // The directory holds every instance's socket: stopping one must not remove it.
        Assert.Equal(["yes"], service["RuntimeDirectoryPreserve"]);
        Assert.Equal("/var/log/firezone-tunnel", LogOptions.DefaultDirectory);
        Assert.Equal(["firezone-tunnel"], service["LogsDirectory"]);
        Assert.Contains("--log-file /var/log/firezone-tunnel/%i.log", Assert.Single(service["ExecStart"]));

        // A ReadWritePaths= entry that does not exist fails the start with 226/NAMESPACE unless it
        // is marked optional with '-'; what is left must exist on every Linux machine at boot.
        string[] paths = [.. service["ReadWritePaths"].SelectMany(v => v.Split(' ', StringSplitOptions.RemoveEmptyEntries))];
        // /tmp: .NET's diagnostics socket (dotnet-counters), which strict would leave read-only;
        // /run/resolvconf (optional): resolvconf's records for the file's DNS; /etc/wireguard
        // (optional): SaveConfig rewrites the file there.
        Assert.Equal(["/proc/sys/net", "/tmp", "-/run/resolvconf", "-/etc/wireguard"], paths);
        Assert.All(paths.Where(p => !p.StartsWith('-')), p => Assert.True(Directory.Exists(p), p));
    }

    /// <summary>The [Unit] section's settings, as <see cref="ServiceSettings"/>.</summary>
    private static Dictionary<string, string> UnitSettings()
    {
        var settings = new Dictionary<string, string>();
        bool inUnit = false;
        foreach (string raw in File.ReadAllLines(UnitPath))
        {
            string line = raw.Trim();
            if (line.StartsWith('['))
            {
                inUnit = line == "[Unit]";
            }
            else if (inUnit && line.Length > 0 && line[0] != '#' && line.IndexOf('=') is > 0 and var equals)
            {
                settings[line[..equals]] = line[(equals + 1)..];
            }
        }
        return settings;
    }

    /// <summary>
    /// What scripts/lab/systemd-unit.sh found under systemd 252 and the unit now says (each checked
    /// there by a real start; here only that nobody drops it unnoticed).
    /// </summary>
    [Fact]
    public void The_unit_keeps_what_the_systemd_lab_verified()
    {
        var service = ServiceSettings();
        var unit = UnitSettings();
        // A mistake in the file fails every start the same way: with Restart=on-failure every 2 s,
        // systemd's start limit (5 in 10 s) never trips, the unit restarted forever and systemctl
        // status (the latest start's lines) never showed the FILE:LINE line. Not restarted on it
        // (EX_CONFIG) nor on a usage error (2); restarted on 1 (an unresolved host name, a runtime failure).
        Assert.Equal(["on-failure"], service["Restart"]);
        Assert.Equal(["2"], service["RestartSec"]);
        Assert.Equal([$"2 {Cli.CommandLine.ConfigMistakeExitCode}"], service["RestartPreventExitStatus"]);
        Assert.DoesNotContain("StartLimitBurst", unit.Keys);
        // systemctl reload as with wg-quick@.service, after the daemon's own reading of the file
        // (wg syncconf reads only wg's keys: a broken Address or #! directive passed the reload
        // and failed the next start with 78, which is not restarted).
        Assert.Equal([InstalledExecutable + " up --check --config /etc/wireguard/%i.conf",
            "/bin/bash -c 'exec /usr/bin/wg syncconf %i <(exec /usr/bin/wg-quick strip %i)'"], service["ExecReload"]);
        // No raw sockets; the TUN device only.
        Assert.Equal(["CAP_NET_ADMIN CAP_NET_BIND_SERVICE"], service["CapabilityBoundingSet"]);
        Assert.Equal(["CAP_NET_ADMIN CAP_NET_BIND_SERVICE"], service["AmbientCapabilities"]);
        Assert.Equal(["closed"], service["DevicePolicy"]);
        Assert.Equal(["/dev/net/tun rw"], service["DeviceAllow"]);
        // /proc/sys read-only but /proc/sys/net (ReadWritePaths): forwarding and src_valid_mark.
        Assert.Equal(["yes"], service["ProtectKernelTunables"]);
        Assert.Equal(["AF_UNIX AF_INET AF_INET6 AF_NETLINK"], service["RestrictAddressFamilies"]);
        // The .NET JIT writes code; /proc/sys/net is not a process's subset; the device must be visible.
        Assert.False(service.ContainsKey("MemoryDenyWriteExecute"));
        Assert.False(service.ContainsKey("ProcSubset"));
        Assert.False(service.ContainsKey("PrivateDevices"));
        // No core dump with the keys in it (security review, 2026-11-27).
        Assert.Equal(["0"], service["LimitCORE"]);
    }

    /// <summary>
    /// The exit codes RestartPreventExitStatus relies on, from the executable: a mistake in the file
    /// is EX_CONFIG (78), a host name that does not resolve is 1, which systemd retries.
    /// </summary>
    [Fact]
    public async Task A_mistake_in_the_file_exits_78_and_an_unresolved_host_name_1()
    {
        Assert.Equal(78, Cli.CommandLine.ConfigMistakeExitCode);
        string name = UapiServerFixture.UniqueName();
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        string header = $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\n";
        var environment = new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" };
        try
        {
            await File.WriteAllTextAsync(config, header + "AllowedIPs = 10.0.0.0/8\nEndpoint = 192.0.2.1:70000\n");
            var mistake = await ProcessRunner.RunAsync(Executable, ["up", "--config", config], environment: environment, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(78, mistake.ExitCode);
            Assert.StartsWith($"firezone-tunnel: {config}:7: ", mistake.Stderr);

            // .invalid never resolves (RFC 6761 section 6.4); to the daemon it looks like DNS not up yet.
            // In a namespace of the test's own with only loopback, so the lookup fails here, at once,
            // and no query leaves the machine; without retries whatever the runner's environment says.
            await File.WriteAllTextAsync(config, header + "AllowedIPs = 10.0.0.0/8\nEndpoint = nowhere.invalid:51820\n");
            environment["WG_ENDPOINT_RESOLUTION_RETRIES"] = "";
            await using var ns = await NetworkNamespace.CreateAsync();
            var unresolved = await ns.ExecAsync(Executable, ["up", "--config", config], environment: environment, timeout: TimeSpan.FromSeconds(60));
            Assert.Equal(1, unresolved.ExitCode);
            // The line goes on with the name and the resolver's reason, which depends on the machine's DNS.
            Assert.StartsWith($"firezone-tunnel: {config}:7: Endpoint: cannot resolve the host name nowhere.invalid: ", unresolved.Stderr);
            Assert.Single(unresolved.Stderr.TrimEnd('\n').Split('\n'));
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Fact]
    public async Task Systemd_analyze_verify_accepts_the_unit()
    {
        var service = ServiceSettings();
        string execStart = Assert.Single(service["ExecStart"]);
        Assert.StartsWith(InstalledExecutable + " up --config /etc/wireguard/%i.conf ", execStart);

        // verify checks that ExecStart's program exists and is executable: point it at the build's
        // executable instead of /usr/local/bin, which the test machine need not have.
        var directory = Directory.CreateTempSubdirectory("fzt-unit");
        try
        {
            string unit = await File.ReadAllTextAsync(UnitPath);
            Assert.Contains("ExecStart=" + InstalledExecutable + " ", unit);
            await File.WriteAllTextAsync(Path.Combine(directory.FullName, "firezone-tunnel@.service"),
                unit.Replace("=" + InstalledExecutable + " ", "=" + Executable + " ", StringComparison.Ordinal));
            var verify = await ProcessRunner.RunAsync("systemd-analyze",
                ["verify", "--man=no", Path.Combine(directory.FullName, "firezone-tunnel@wg0.service")], timeout: TimeSpan.FromSeconds(30));
            // Unknown keys and bad values are only warnings (exit code 0): any output is a finding.
            Assert.True(verify.ExitCode == 0 && verify.Stderr.Length == 0 && verify.Stdout.Length == 0,
                $"exit {verify.ExitCode}: {verify.Stdout}{verify.Stderr}");

            // The check itself works: a key systemd does not know is reported.
            await File.AppendAllTextAsync(Path.Combine(directory.FullName, "firezone-tunnel@.service"), "\n[Service]\nRuntimeDirectoryy=wireguard\n");
            var misspelt = await ProcessRunner.RunAsync("systemd-analyze",
                ["verify", "--man=no", Path.Combine(directory.FullName, "firezone-tunnel@wg0.service")], timeout: TimeSpan.FromSeconds(30));
            Assert.Contains("Unknown key", misspelt.Stderr, StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The README's layout: the published directory in /opt/firezone-tunnel and a symlink to its
    /// executable in /usr/local/bin (ExecStart's path). The executable (the .NET apphost) looks for
    /// firezone-tunnel.dll beside the file it really is, so the symlink runs and a copy of the
    /// executable alone does not. Built here in a temporary directory from the test's own output.
    /// </summary>
    [Fact]
    public async Task The_executable_runs_through_a_symlink_but_not_as_a_lone_copy()
    {
        var directory = Directory.CreateTempSubdirectory("fzt-install");
        try
        {
            string link = Path.Combine(directory.FullName, "firezone-tunnel");
            File.CreateSymbolicLink(link, Executable);
            var linked = await ProcessRunner.RunAsync(link, ["--version"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(linked.ExitCode == 0, linked.Stderr);
            Assert.StartsWith("0.1.0", linked.Stdout);

            string copy = Path.Combine(directory.FullName, "copied");
            Directory.CreateDirectory(copy);
            File.Copy(Executable, Path.Combine(copy, "firezone-tunnel"));
            var copied = await ProcessRunner.RunAsync(Path.Combine(copy, "firezone-tunnel"), ["--version"], timeout: TimeSpan.FromSeconds(30));
            Assert.NotEqual(0, copied.ExitCode);
            Assert.Contains($"The application to execute does not exist: '{Path.Combine(copy, "firezone-tunnel.dll")}'", copied.Stderr);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A reader of the shipped files (or the README) who follows a path they name finds the file:
    /// the logrotate file named tests/Host.Tests/LogRotateTests.cs for the test that runs it, which
    /// is in LogFileTests.cs.
    /// </summary>
    [Theory]
    [InlineData("packaging/firezone-tunnel@.service")]
    [InlineData("packaging/firezone-tunnel.logrotate")]
    [InlineData("README.md")]
    public void Every_repository_path_a_shipped_file_names_exists(string shipped)
    {
        string file = RepositoryFile.Find(shipped);
        string root = Path.GetDirectoryName(file)!;
        for (int up = shipped.Count(c => c == '/'); up > 0; up--)
        {
            root = Path.GetDirectoryName(root)!;
        }
        var missing = Regex.Matches(File.ReadAllText(file), @"\b(?:src|tests|scripts|packaging)/[A-Za-z0-9_./@-]*[A-Za-z0-9_@-]\.[A-Za-z]+\b")
            .Select(m => m.Value)
            .Where(path => !File.Exists(Path.Combine(root, path)))
            .Distinct()
            .ToList();
        Assert.True(missing.Count == 0, $"{shipped} names files that do not exist: {string.Join(", ", missing)}");
    }
}
