using Akka.Hosting;
using Akka.Logger.Serilog;
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
    /// Akka's scheduler wakes its thread once per tick, and every peer with a session has a timer
    /// armed (keepalive, rekey). Its default tick of 10 ms cost an idle tunnel 828 thread wake-ups
    /// a second and 1.3% of a core here (wireguard-go: 8 and 0.05%). The peer
    /// timers are whole seconds (whitepaper section 6: REKEY_TIMEOUT 5 s, KEEPALIVE_TIMEOUT 10 s,
    /// the retransmit jitter up to 333 ms), so firing up to 100 ms late changes nothing on the wire.
    /// A scheduler that sleeps until the next deadline (one .NET timer per item) was tried on
    /// 2026-11-26: idle wake-ups 97 -> 13 a second, but the many-peers benchmark fell from 1.10 to
    /// 0.55 of one peer (four rounds, counterbalanced; cause not found), so the wheel stays.
    /// </summary>
    public const string SchedulerHocon = "akka.scheduler.tick-duration = 100ms";

    public void Compose(IServiceCollection services, DaemonOptions options)
    {
        services.AddSingleton<DaemonExit>();
        services.AddAkka("firezone-tunnel", (builder, provider) =>
        {
            builder.AddHocon(SchedulerHocon, HoconAddMode.Prepend);
            builder.ConfigureLoggers(loggers =>
            {
                loggers.ClearLoggers();
                loggers.AddSerilogLogging();
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
                provider.GetRequiredService<ITunnelControl>()));
        }
    }
}
