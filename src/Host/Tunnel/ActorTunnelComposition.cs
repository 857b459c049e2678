using Akka.Hosting;
using Akka.Logger.Serilog;
using Firezone.Actors.Actors.Time;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Daemon;
using Firezone.Actors.Host.Network;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// The production composition root: Akka.Hosting builds the actor system (Serilog through
/// Akka.Logger.Serilog, CoordinatedShutdown tied to the host's lifetime), then the hosted services
/// start in order: the actor system, the tunnel (TUN device; the TunnelActor once a private key is
/// set), in service mode the interface's addresses and routes, and last the UAPI socket. They stop
/// in the reverse order.
/// </summary>
public sealed class ActorTunnelComposition : ITunnelComposition
{
    /// <summary>
    /// Akka's own scheduler (HashedWheelTimerScheduler) ticks whether or not anything is due: at its
    /// default 10 ms an idle tunnel woke 828 times a second (1.3% of a core), at 100 ms still about
    /// 100 times (each tick wakes .NET's timer thread and two pool workers); wireguard-go wakes 8
    /// times. <see cref="SleepingTickScheduler"/> keeps the wheel's 100 ms grid but sleeps until the
    /// next item is due: 8 wake-ups a second. The peer timers are whole seconds (whitepaper section
    /// 6: REKEY_TIMEOUT 5 s, KEEPALIVE_TIMEOUT 10 s, the retransmit jitter up to 333 ms), so firing up
    /// to 100 ms late changes nothing on the wire.
    /// (An earlier trial of a sleeping scheduler seemed to halve the many-peers benchmark; that
    /// benchmark then started its 200 load processes in sessions of their own, so autogroup
    /// scheduling gave the Gateway 1 CPU share in 200 and the result swung with small changes.
    /// With the load generator in one session both schedulers measure the same; see the README.)
    /// </summary>
    public const string SchedulerHocon = "akka.scheduler.tick-duration = 100ms\n" + SleepingTickScheduler.Hocon;

    /// <summary>
    /// The host stops the actor system (Akka.Hosting runs CoordinatedShutdown when its hosted
    /// service stops, after PreDown, SaveConfig, the UAPI and the network teardown). Akka's own hook
    /// on the process's SIGTERM would otherwise terminate it the moment the signal arrives, while
    /// PreDown runs: a <c>PreDown = wg showconf %i</c> then hung, and nothing could read the peers.
    /// </summary>
    public const string ShutdownHocon = "akka.coordinated-shutdown.run-by-clr-shutdown-hook = off";

    public void Compose(IServiceCollection services, DaemonOptions options)
    {
        services.AddSingleton<DaemonExit>();
        services.AddAkka("firezone-tunnel", (builder, provider) =>
        {
            // AkkaLeftoverLogger: what Akka logs outside its loggers' lifetime goes to the log too, not as text to stdout.
            builder.AddHocon(SchedulerHocon + "\n" + ShutdownHocon + "\n" + Logging.AkkaLeftoverLogger.Hocon, HoconAddMode.Prepend);
            builder.ConfigureLoggers(loggers =>
            {
                // Akka filters before Serilog does: left at its default (Info), --log-level debug
                // would never see the actors' Debug lines (peer changes, handshakes).
                loggers.LogLevel = AkkaLogLevel(options.Log.MinimumLevel);
                loggers.ClearLoggers();
                // With Akka.Logger.Serilog's formatter the actors' templates are Serilog message
                // templates: a named hole ("peer {PublicKey} added") becomes a property of that
                // name in the JSON line, so `jq 'select(.PublicKey == ...)'` finds a peer's lines.
                loggers.AddSerilogLogging(enableSerilogFormatter: true);
            });
            builder.WithActors((system, registry) =>
            {
                var listener = system.ActorOf(
                    TunnelFailureListener.Props(provider.GetRequiredService<DaemonExit>(), provider.GetRequiredService<IHostApplicationLifetime>()),
                    "tunnel-failures");
                registry.Register<TunnelFailureListener>(listener);
            });
        });
        services.AddSingleton<ActorTunnelControl>();
        services.AddSingleton<ITunnelControl>(provider => provider.GetRequiredService<ActorTunnelControl>());
        services.AddHostedService(provider => provider.GetRequiredService<ActorTunnelControl>());
        if (options.Config is not null)
        {
            services.AddHostedService(provider => new NetworkSetupHostedService(
                options, ProcessCommandRunner.Instance, provider.GetRequiredService<Microsoft.Extensions.Logging.ILogger<NetworkSetupHostedService>>(),
                provider.GetRequiredService<ITunnelControl>(),
                // The daemon's commands run in its own namespace, and so do these listeners.
                watchNftables: (changed, failed) => new Native.NftablesChangeListener(changed, failed),
                watchAddresses: (name, changed, failed) => new Native.AddressChangeListener(Native.NetworkInterfaceControl.GetIndex(name), changed, failed)));
        }
    }

    /// <summary>The Akka level for a Serilog minimum level (Akka has no Verbose or Fatal).</summary>
    public static Akka.Event.LogLevel AkkaLogLevel(Serilog.Events.LogEventLevel level) => level switch
    {
        <= Serilog.Events.LogEventLevel.Debug => Akka.Event.LogLevel.DebugLevel,
        Serilog.Events.LogEventLevel.Information => Akka.Event.LogLevel.InfoLevel,
        Serilog.Events.LogEventLevel.Warning => Akka.Event.LogLevel.WarningLevel,
        _ => Akka.Event.LogLevel.ErrorLevel,
    };
}
