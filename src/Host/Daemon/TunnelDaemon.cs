using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Logging;
using Firezone.Actors.Host.Network;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serilog;
using Serilog.Events;

namespace Firezone.Actors.Host.Daemon;

/// <summary>
/// Runs one daemon: builds the generic host (Serilog, systemd integration, the tunnel from
/// <see cref="ITunnelComposition"/>, the UAPI service), signals readiness once everything has
/// started, and waits for SIGTERM, SIGINT, SIGHUP or removal of the socket. Exit code 0 after a clean stop,
/// 1 with one error line when it cannot start.
/// </summary>
public static class TunnelDaemon
{
    public static async Task<int> RunAsync(DaemonOptions options, ITunnelComposition composition, IReadinessSignal? readiness, CancellationToken cancellationToken)
    {
        // Before the log file is opened: a second daemon for a name in use must leave the running
        // one's log (and everything else) alone. ActorTunnelControl checks again when it starts.
        try
        {
            Uapi.UapiServer.EnsureAvailable(Uapi.UapiSocketPath.For(options.InterfaceName, options.SocketDirectory));
        }
        catch (StartupException e)
        {
            Report(readiness, e.Message);
            return 1;
        }
        string? logFileProblem = null;
        Serilog.Core.Logger created;
        AppendOnlyFileSink? logFile;
        try
        {
            created = SerilogSetup.Create(options.Log, out logFile);
        }
        catch (IOException e) when (options.Log.FileIsDefault)
        {
            // The default file (a read-only or full /var/log): run without it, as wireguard-go runs
            // with no log file at all, rather than fail a `wg-quick up` that cannot pass --log-file.
            // A --log-file that cannot be opened is still an error (CommandLine reports it).
            logFileProblem = e.Message;
            created = SerilogSetup.Create(options.Log with { FilePath = null }, out logFile);
        }
        await using var logger = created;
        // Akka.Logger.Serilog writes to the global logger.
        Log.Logger = logger;
        if (logFileProblem is not null)
        {
            logger.Warning(StandardErrorProblem.RunningWithoutLogFile, logFileProblem);
            string warning = $"{logFileProblem}; running without a log file";
            if (readiness is not null)
            {
                // A detaching parent passes it on to wg-quick's stderr before it exits.
                readiness.Warning(warning);
            }
            else
            {
                SayOnStandardError(JournalErrorWriter.NoticeLine("firezone-tunnel: " + warning), logger, LogEventLevel.Warning);
            }
        }
        if (options.Config is { } config)
        {
            foreach (var note in config.Notes)
            {
                // Warning: a repeated key whose earlier value is dropped, say, is worth seeing
                // under --log-level warning.
                if (note.Line > 0)
                {
                    logger.Warning("{ConfigFile}:{ConfigLine}: {Note}", config.SourcePath, note.Line, note.Message);
                }
                else
                {
                    // About the whole file (ConfigNote.Line 0), as ConfigException says FILE: problem.
                    logger.Warning("{ConfigFile}: {Note}", config.SourcePath, note.Message);
                }
            }
        }
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            Args = [],
        });
        builder.Services.AddSerilog(logger, dispose: false);
        builder.Services.AddSingleton(options);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        // Type=notify: READY=1 once started, STOPPING=1 on stop; a no-op outside systemd.
        builder.Services.AddSystemd();
        IHost host;
        try
        {
            // Service mode's hooks around everything else (see WgQuickHooksHostedService). Added as
            // plain IHostedService singletons: AddHostedService keeps one registration per type.
            bool hooks = options.Config is { Interface.Hooks.Count: > 0 };
            if (hooks)
            {
                var hooked = options.Config!;
                builder.Services.AddSingleton(provider => new WgQuickHookRunner(options.InterfaceName, hooked.SourcePath, hooked.Interface.Hooks,
                    provider.GetRequiredService<Microsoft.Extensions.Logging.ILogger<WgQuickHookRunner>>()));
                builder.Services.AddSingleton<IHostedService>(provider => Hooks(provider, WgQuickHookStage.PreUp, WgQuickHookStage.PostDown));
            }
            composition.Compose(builder.Services, options);
            if (options.Config is not null)
            {
                // firezone-tunnel save (the UAPI's fz_save=1), and SaveConfig = true on stop.
                builder.Services.AddSingleton(provider => new ConfigSaver(options, provider.GetRequiredService<Control.ITunnelControl>(),
                    ProcessCommandRunner.Instance, provider.GetRequiredService<Microsoft.Extensions.Logging.ILogger<ConfigSaver>>()));
            }
            builder.Services.AddHostedService<UapiHostedService>();
            if (options.Config is not null)
            {
                // Stopped after PreDown and before the UAPI and the tunnel, as wg-quick down saves;
                // it reads the file again then, as wg-quick down, for a SaveConfig set since the start.
                builder.Services.AddSingleton<IHostedService>(provider => new SaveConfigHostedService(
                    provider.GetRequiredService<ConfigSaver>(), provider.GetRequiredService<IHostApplicationLifetime>(),
                    provider.GetRequiredService<Microsoft.Extensions.Logging.ILogger<SaveConfigHostedService>>(),
                    provider.GetService<WgQuickHookRunner>()));
            }
            if (hooks)
            {
                builder.Services.AddSingleton<IHostedService>(provider => Hooks(provider, WgQuickHookStage.PostUp, WgQuickHookStage.PreDown));
            }
            host = builder.Build();
        }
        catch (StartupException e)
        {
            return Fail(logger, readiness, e.Message);
        }
        using (host)
        using (HangupStop.Register(host.Services.GetRequiredService<IHostApplicationLifetime>(), logger, options.InterfaceName))
        {
            try
            {
                await host.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Read before stopping: the host's StopAsync sets ApplicationStopping itself.
                bool stopRequested = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested
                    || cancellationToken.IsCancellationRequested;
                // Stop what did start (TUN device, nftables table, actor system) so nothing is left behind.
                await StopQuietlyAsync(host).ConfigureAwait(false);
                if (host.Services.GetService<DaemonExit>()?.Failure is { } startFailure)
                {
                    // The tunnel failed while starting (its TUN device deleted by a PostUp, say), and
                    // that stopped the start: the failure is what to report, not the cancellation.
                    return Fail(logger, readiness, startFailure);
                }
                if (stopRequested && e is OperationCanceledException or StartupException)
                {
                    // SIGTERM (systemctl stop) while starting, in a slow hook say: a stop, not a
                    // failure. Under systemd the hook gets the SIGTERM too and may end first (143).
                    // So is the interface deleted meanwhile (wg-quick down, or a PostUp that deletes it).
                    string reason = host.Services.GetService<DaemonExit>()?.Removal ?? e.Message;
                    logger.Information("Interface {Interface} stopped while starting: {Reason}", options.InterfaceName, reason);
                    return 0;
                }
                if (e is not (StartupException or Control.TunnelControlException or IOException or UnauthorizedAccessException))
                {
                    logger.Error(e, "Unexpected failure while starting");
                }
                int exitCode = Fail(logger, readiness, e.Message);
                if (StartupException.IsNotForRestart(e) || IsTunDeviceBeyondRestart(e))
                {
                    // Every start would fail the same way until the machine or the unit is changed:
                    // EX_CONFIG, on which the unit does not restart (see StartupException.NotInstalled and HookFailed).
                    exitCode = Cli.CommandLine.ConfigMistakeExitCode;
                }
                if (IsNameHeldElsewhere(e))
                {
                    // Another interface has the name: nothing of ours ran, and a log file this start
                    // created (named after that interface, by default) would be left for nothing, as
                    // a second daemon for a name in use leaves none (it fails before the log opens).
                    logFile?.Discard();
                }
                return exitCode;
            }
            logger.Information("firezone-tunnel {Version} running interface {Interface}", Cli.CommandLine.Version, options.InterfaceName);
            readiness?.Ready();
            await host.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
            var exit = host.Services.GetService<DaemonExit>();
            if (exit?.Removal is { } removal && exit.Failure is null)
            {
                // wg-quick down deletes the interface of a userspace daemon: a stop, as for wireguard-go.
                logger.Information("Interface {Interface} stopped: {Reason}", options.InterfaceName, removal);
                return 0;
            }
            logger.Information("Interface {Interface} stopped", options.InterfaceName);
            if (exit?.Failure is { } failure)
            {
                // The tunnel lost its TUN device or socket: a real failure, not a requested stop.
                logger.Error(StandardErrorProblem.StoppedBecause, failure);
                SayOnStandardError("firezone-tunnel: " + failure, logger, LogEventLevel.Error);
                return 1;
            }
        }
        return 0;
    }

    private static WgQuickHooksHostedService Hooks(IServiceProvider provider, WgQuickHookStage onStart, WgQuickHookStage onStop) =>
        new(provider.GetRequiredService<WgQuickHookRunner>(), onStart, onStop, provider.GetRequiredService<IHostApplicationLifetime>(),
            provider.GetRequiredService<Microsoft.Extensions.Logging.ILogger<WgQuickHooksHostedService>>());

    /// <summary>
    /// The TUN device cannot be made until the operator acts: opening /dev/net/tun or creating the
    /// device was not permitted (EPERM, EACCES: no CAP_NET_ADMIN, not root or a unit's capabilities
    /// changed), /dev/net/tun is missing (ENOENT: a container started without it) or has no driver
    /// (ENODEV, ENXIO: the tun module cannot be loaded; the unit may not load modules itself).
    /// </summary>
    private static bool IsTunDeviceBeyondRestart(Exception e) =>
        TunDeviceErrno(e) is { } errno && BeyondRestartErrnos.Contains(errno);

    private static readonly int[] BeyondRestartErrnos =
        [Tmds.Linux.LibC.EPERM, Tmds.Linux.LibC.EACCES, Tmds.Linux.LibC.ENOENT, Tmds.Linux.LibC.ENODEV, Tmds.Linux.LibC.ENXIO];

    /// <summary>The errno of a start that failed making the TUN device, or null.</summary>
    private static int? TunDeviceErrno(Exception e) =>
        e is StartupException { InnerException: Native.TunDeviceException tun } ? tun.Errno : null;

    /// <summary>
    /// The kernel refused the TUN device's name (TUNSETIFF: EINVAL, another kind of interface has it
    /// or the name is refused; EBUSY, another process holds that TUN device), or the PreUp check
    /// found the name taken before that (<see cref="StartupException.NameTaken"/>).
    /// </summary>
    private static bool IsNameHeldElsewhere(Exception e) =>
        e is StartupException { NameTaken: true }
        || (TunDeviceErrno(e) is { } errno && (errno == Tmds.Linux.LibC.EINVAL || errno == Tmds.Linux.LibC.EBUSY));

    private static int Fail(ILogger logger, IReadinessSignal? readiness, string problem)
    {
        logger.Error(StandardErrorProblem.CannotStart, problem);
        Report(readiness, problem, logger);
        return 1;
    }

    /// <summary>The one line a failed start ends with: on the detaching parent's stderr, or on ours.</summary>
    /// <param name="logged">The logger that logged it already, or null (no logger yet).</param>
    private static void Report(IReadinessSignal? readiness, string problem, ILogger? logged = null)
    {
        if (readiness is not null)
        {
            readiness.Failed(problem);
        }
        else
        {
            SayOnStandardError("firezone-tunnel: " + problem, logged, LogEventLevel.Error);
        }
    }

    /// <summary>
    /// <paramref name="line"/> on stderr, unless stderr is JSON (--log-format json) and the
    /// console, JSON lines on stdout, has the event <paramref name="logged"/> just logged: where a
    /// container's runtime merges the streams it would be there twice. (JSON stderr is never
    /// installed in a detached child, whose console is off: Program.Main; there the line goes to the
    /// parent through the readiness pipe, not here.) Under the journal both carry the priority.
    /// </summary>
    private static void SayOnStandardError(string line, ILogger? logged, LogEventLevel level)
    {
        if (JsonErrorWriter.Installed && logged is not null && logged.IsEnabled(level))
        {
            return;
        }
        Console.Error.WriteLine(line);
    }

    private static async Task StopQuietlyAsync(IHost host)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await host.StopAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Best effort: the start already failed and that is what gets reported.
        }
    }
}
