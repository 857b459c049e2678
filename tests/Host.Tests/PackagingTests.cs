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

    private static string UnitPath
    {
        get
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                string candidate = Path.Combine(directory.FullName, "packaging", "firezone-tunnel@.service");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
            throw new FileNotFoundException("packaging/firezone-tunnel@.service above " + AppContext.BaseDirectory);
        }
    }

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
        // /tmp: .NET's diagnostics socket (dotnet-counters), which strict would leave read-only.
        Assert.Equal(["/proc/sys/net", "/tmp"], paths);
        Assert.All(paths.Where(p => !p.StartsWith('-')), p => Assert.True(Directory.Exists(p), p));
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
                unit.Replace("ExecStart=" + InstalledExecutable + " ", "ExecStart=" + Executable + " ", StringComparison.Ordinal));
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
}
