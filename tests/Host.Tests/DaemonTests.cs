using System.Text.Json;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Daemon;
using Firezone.Actors.Host.Logging;
using Firezone.Actors.Host.Uapi;
using Microsoft.Extensions.DependencyInjection;
using Serilog.Events;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The daemon's host (generic host, Serilog, UAPI service, shutdown) run in-process with the
/// in-memory tunnel in place of the actor topology.
/// </summary>
[Collection(ProcessSignalsCollection.Name)] // its ConsoleLifetime takes the SIGTERM DnsHostNameResolverTests sends this process
public sealed class DaemonTests
{
    private sealed class InMemoryComposition(InMemoryTunnelControl control) : ITunnelComposition
    {
        public void Compose(IServiceCollection services, DaemonOptions options) => services.AddSingleton<ITunnelControl>(control);
    }

    private sealed class Readiness : IReadinessSignal
    {
        public TaskCompletionSource<string?> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public void Ready() => Outcome.TrySetResult(null);
        public void Failed(string problem) => Outcome.TrySetResult(problem);
        public void Warning(string problem) => Warnings.Add(problem);
        public List<string> Warnings { get; } = [];
    }

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Service_mode_applies_the_file_serves_wg_stops_when_the_socket_is_removed_and_logs_no_keys()
    {
        var privateKey = TestKeys.New();
        var psk = TestKeys.New();
        var psk2 = TestKeys.New();
        var peer = TestKeys.New();
        string name = UapiServerFixture.UniqueName();
        string logFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.psk");
        string socket = UapiSocketPath.For(name);
        var config = new WgQuickConfigParser().Parse($"/etc/wireguard/{name}.conf", $"""
            [Interface]
            PrivateKey = {privateKey.ToBase64()}
            ListenPort = 42001
            DNS = 10.0.0.53

            [Peer]
            PublicKey = {peer.ToBase64()}
            PresharedKey = {psk.ToBase64()}
            AllowedIPs = 10.0.0.2/32
            """);
        var control = new InMemoryTunnelControl();
        var readiness = new Readiness();
        var options = new DaemonOptions
        {
            InterfaceName = name,
            Config = config,
            Log = new LogOptions { FilePath = logFile, Console = false, MinimumLevel = LogEventLevel.Verbose },
        };
        try
        {
            var run = TunnelDaemon.RunAsync(options, new InMemoryComposition(control), readiness, CancellationToken.None);
            Assert.Null(await readiness.Outcome.Task.WaitAsync(Bound));
            Assert.True(File.Exists(socket));

            var status = await control.GetStatusAsync(CancellationToken.None);
            Assert.Equal(privateKey, status.PrivateKey);
            Assert.Equal((ushort)42001, status.ListenPort);
            Assert.Equal(psk, Assert.Single(status.Peers).Config.PresharedKey);

            string shown = (await ProcessRunner.WgAsync("showconf", name)).Stdout;
            Assert.Contains($"PresharedKey = {psk.ToBase64()}", shown);
            await File.WriteAllTextAsync(keyFile, psk2.ToBase64());
            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "peer", peer.ToBase64(), "preshared-key", keyFile)).ExitCode);
            control.PortInUse = 42002;
            Assert.NotEqual(0, (await ProcessRunner.WgAsync("set", name, "listen-port", "42002")).ExitCode);

            // wireguard-go's convention: deleting the socket stops the daemon, cleanly (exit code 0).
            File.Delete(socket);
            Assert.Equal(0, await run.WaitAsync(Bound));
            Assert.False(File.Exists(socket));

            string[] lines = await File.ReadAllLinesAsync(logFile);
            Assert.Contains(lines, l => l.Contains("UAPI set", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.Contains("UAPI request refused (errno 98)", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.Contains("was removed; shutting down", StringComparison.Ordinal));
            foreach (var line in lines)
            {
                using var json = JsonDocument.Parse(line);
                Assert.True(DateTimeOffset.TryParse(json.RootElement.GetProperty("time").GetString(), out _));
                Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("severity").GetString()));
                Assert.NotNull(json.RootElement.GetProperty("message").GetString());
            }
            string all = string.Join('\n', lines);
            foreach (var secret in new[] { privateKey, psk, psk2 })
            {
                Assert.DoesNotContain(secret.ToBase64(), all);
                Assert.DoesNotContain(secret.ToHex(), all, StringComparison.OrdinalIgnoreCase);
            }
        }
        finally
        {
            File.Delete(socket);
            File.Delete(logFile);
            File.Delete(keyFile);
        }
    }

    /// <summary>
    /// `systemctl reload` (wg syncconf) and `wg set` add a peer through the UAPI, which carries no
    /// ECN mode: the new peer gets the file's [Interface] #! EcnMode, as the file's peers without
    /// one of their own got it at start, and a peer already running keeps its own.
    /// </summary>
    [Fact]
    public async Task A_peer_added_while_running_gets_the_file_s_default_ecn_mode()
    {
        var filePeer = TestKeys.New();
        var added = TestKeys.New();
        string name = UapiServerFixture.UniqueName();
        string socket = UapiSocketPath.For(name);
        var config = new WgQuickConfigParser().Parse($"/etc/wireguard/{name}.conf", $"""
            [Interface]
            PrivateKey = {TestKeys.New().ToBase64()}
            #! EcnMode = off

            [Peer]
            PublicKey = {filePeer.ToBase64()}
            #! EcnMode = compatibility
            AllowedIPs = 10.0.0.2/32
            """);
        var control = new InMemoryTunnelControl();
        var readiness = new Readiness();
        var options = new DaemonOptions { InterfaceName = name, Config = config, Log = new LogOptions { FilePath = null, Console = false } };
        try
        {
            var run = TunnelDaemon.RunAsync(options, new InMemoryComposition(control), readiness, CancellationToken.None);
            Assert.Null(await readiness.Outcome.Task.WaitAsync(Bound));

            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "peer", added.ToBase64(), "allowed-ips", "10.0.0.3/32")).ExitCode);
            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "peer", filePeer.ToBase64(), "persistent-keepalive", "25")).ExitCode);
            var modes = (await control.GetStatusAsync(CancellationToken.None)).Peers.ToDictionary(p => p.Config.PublicKey, p => p.Config.EcnMode);
            Assert.Equal(EcnMode.Off, modes[added]);
            Assert.Equal(EcnMode.Compatibility, modes[filePeer]);

            File.Delete(socket);
            Assert.Equal(0, await run.WaitAsync(Bound));
        }
        finally
        {
            File.Delete(socket);
        }
    }

    [Fact]
    public async Task A_daemon_that_cannot_take_its_socket_fails_with_one_line_and_leaves_the_other_alone()
    {
        await using var other = UapiServerFixture.Start();
        var readiness = new Readiness();
        string logFile = Path.Combine(Path.GetTempPath(), $"fzt-{other.Name}.log");
        var options = new DaemonOptions
        {
            InterfaceName = other.Name,
            Log = new LogOptions { FilePath = logFile, Console = false },
        };
        try
        {
            int exit = await TunnelDaemon.RunAsync(options, new InMemoryComposition(new InMemoryTunnelControl()), readiness, CancellationToken.None).WaitAsync(Bound);
            Assert.Equal(1, exit);
            Assert.Equal($"{other.SocketPath}: socket in use (is another daemon serving this interface?)", await readiness.Outcome.Task);
            Assert.True(File.Exists(other.SocketPath));
            Assert.Equal(0, (await ProcessRunner.WgAsync("show", other.Name)).ExitCode);
            // Checked before the log is opened: the running daemon's log (the same default path) is not touched.
            Assert.False(File.Exists(logFile));
        }
        finally
        {
            File.Delete(logFile);
        }
    }

    /// <summary>A part of the tunnel that fails to start the way the real ones do (no TUN device, no nft).</summary>
    private sealed class FailingStart(string problem) : Microsoft.Extensions.Hosting.IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => throw new StartupException(problem);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class FailingComposition(string problem) : ITunnelComposition
    {
        public void Compose(IServiceCollection services, DaemonOptions options)
        {
            services.AddSingleton<ITunnelControl>(new InMemoryTunnelControl());
            services.AddHostedService(_ => new FailingStart(problem));
        }
    }

    /// <summary>
    /// An expected start-up failure is one log line, "Cannot start: ...", without the generic
    /// host's own "Hosting failed to start" and its stack trace.
    /// </summary>
    [Fact]
    public async Task A_start_that_fails_logs_one_error_line_without_a_stack_trace()
    {
        const string Problem = "cannot run nft: No such file or directory";
        string name = UapiServerFixture.UniqueName();
        string logFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        var readiness = new Readiness();
        var options = new DaemonOptions
        {
            InterfaceName = name,
            Log = new LogOptions { FilePath = logFile, Console = false, MinimumLevel = LogEventLevel.Debug },
        };
        try
        {
            int exit = await TunnelDaemon.RunAsync(options, new FailingComposition(Problem), readiness, CancellationToken.None).WaitAsync(Bound);
            Assert.Equal(1, exit);
            Assert.Equal(Problem, await readiness.Outcome.Task);
            var errors = new List<JsonElement>();
            foreach (var line in await File.ReadAllLinesAsync(logFile))
            {
                using var json = JsonDocument.Parse(line);
                Assert.False(json.RootElement.TryGetProperty("exception", out _), line);
                Assert.DoesNotContain("   at ", line);
                if (json.RootElement.GetProperty("severity").GetString() is "Error" or "Fatal")
                {
                    errors.Add(json.RootElement.Clone());
                }
            }
            Assert.Equal("Cannot start: " + Problem, Assert.Single(errors).GetProperty("message").GetString());
            Assert.False(File.Exists(UapiSocketPath.For(name)));
        }
        finally
        {
            File.Delete(logFile);
            LeftoverFile.Delete(UapiSocketPath.For(name));
        }
    }

    [Fact]
    public void The_hosts_start_failure_line_is_filtered_but_its_other_errors_and_akka_warnings_are_kept()
    {
        string logFile = Path.Combine(Path.GetTempPath(), $"fzt-{Guid.NewGuid():N}.log");
        try
        {
            using (var logger = SerilogSetup.Create(new LogOptions { FilePath = logFile, Console = false }))
            {
                var host = logger.ForContext("SourceContext", SerilogSetup.HostSource);
                host.ForContext("EventId", new { Id = 11, Name = "HostedServiceStartupFaulted" }, destructureObjects: true)
                    .Error(new InvalidOperationException("boom"), "Hosting failed to start");
                host.ForContext("EventId", new { Id = 9, Name = "BackgroundServiceFaulted" }, destructureObjects: true)
                    .Error(new InvalidOperationException("boom"), "BackgroundService failed");
                var shutdown = logger.ForContext("SourceContext", SerilogSetup.CoordinatedShutdownSource);
                shutdown.Information("CoordinatedShutdown invoked due to [Reason:{Reason}]. Exiting with [ExitCode:{ExitCode}].", "ClrExitReason", 0);
                shutdown.Warning("Coordinated shutdown phase [{Phase}] timed out", "actor-system-terminate");
                logger.ForContext("SourceContext", "Akka.Actor.ActorSystem").Information("other Akka information stays");
            }
            var messages = File.ReadAllLines(logFile).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("message").GetString()!).ToArray();
            Assert.Equal(["BackgroundService failed", "Coordinated shutdown phase [actor-system-terminate] timed out", "other Akka information stays"], messages);
        }
        finally
        {
            File.Delete(logFile);
        }
    }

    [Fact]
    public async Task Cancelling_the_run_stops_the_daemon_and_removes_its_socket()
    {
        string name = UapiServerFixture.UniqueName();
        var readiness = new Readiness();
        using var stop = new CancellationTokenSource();
        var options = new DaemonOptions { InterfaceName = name, Log = new LogOptions { Console = false } };
        try
        {
            var run = TunnelDaemon.RunAsync(options, new InMemoryComposition(new InMemoryTunnelControl()), readiness, stop.Token);
            Assert.Null(await readiness.Outcome.Task.WaitAsync(Bound));
            Assert.True(File.Exists(UapiSocketPath.For(name)));
            await stop.CancelAsync();
            Assert.Equal(0, await run.WaitAsync(Bound));
            Assert.False(File.Exists(UapiSocketPath.For(name)));
        }
        finally
        {
            LeftoverFile.Delete(UapiSocketPath.For(name));
        }
    }

    [Fact]
    public void Log_lines_are_json_with_time_severity_and_message_and_keys_render_redacted()
    {
        string logFile = Path.Combine(Path.GetTempPath(), $"fzt-{Guid.NewGuid():N}.log");
        WireGuardKey key = TestKeys.New();
        try
        {
            using (var logger = SerilogSetup.Create(new LogOptions { FilePath = logFile, Console = false, MinimumLevel = LogEventLevel.Debug }))
            {
                logger.Information("Peer {Peer} has {Count} allowed IPs", key, 3);
                logger.Warning(new InvalidOperationException("boom"), "Something failed");
                logger.Verbose("below the level");
            }
            string[] lines = File.ReadAllLines(logFile);
            Assert.Equal(2, lines.Length);
            using var first = JsonDocument.Parse(lines[0]);
            var root = first.RootElement;
            Assert.Equal("Information", root.GetProperty("severity").GetString());
            Assert.Equal("Peer (key) has 3 allowed IPs", root.GetProperty("message").GetString());
            Assert.Equal(3, root.GetProperty("Count").GetInt32());
            var time = DateTimeOffset.Parse(root.GetProperty("time").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(TimeSpan.Zero, time.Offset);
            Assert.EndsWith("Z", root.GetProperty("time").GetString());
            using var second = JsonDocument.Parse(lines[1]);
            Assert.Equal("Warning", second.RootElement.GetProperty("severity").GetString());
            Assert.Contains("boom", second.RootElement.GetProperty("exception").GetString());
            Assert.DoesNotContain(key.ToBase64(), string.Join('\n', lines));
            Assert.DoesNotContain(key.ToHex(), string.Join('\n', lines));
        }
        finally
        {
            File.Delete(logFile);
        }
    }

    [Theory]
    [InlineData("verbose", LogEventLevel.Debug)]
    [InlineData("error", LogEventLevel.Error)]
    [InlineData("silent", LogEventLevel.Fatal)]
    [InlineData("Information", LogEventLevel.Information)]
    public void Log_levels_accept_wireguard_go_words(string text, LogEventLevel expected)
    {
        Assert.True(LogOptions.TryParseLevel(text, out var level));
        Assert.Equal(expected, level);
    }
}
