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
    /// Akka's default scheduler wakes once per tick whether or not anything is due: at its 10 ms
    /// tick an idle tunnel woke 828 times a second and used 1.3% of a core here, at 100 ms still
    /// 150 times (wireguard-go: 8 and 0.05%). <see cref="DeadlineScheduler"/> wakes only when a timer
    /// is due; a peer's are seconds apart (whitepaper section 6: REKEY_TIMEOUT 5 s,
    /// KEEPALIVE_TIMEOUT 10 s).
    /// </summary>
    public const string SchedulerHocon = DeadlineScheduler.Hocon;

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
