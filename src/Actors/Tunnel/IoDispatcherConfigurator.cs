using Akka.Configuration;
using Akka.Dispatch;

namespace Firezone.Actors.Actors.Tunnel;

/// <summary>
/// The <see cref="Tunnels.IoDispatcherId"/> dispatcher: a <see cref="PinnedDispatcher"/> (one thread
/// per actor, so a stalled sendmmsg never holds a thread the peers share, STYLE.md rule 8) whose
/// thread is an <see cref="IoThreadExecutor"/> that sleeps without spinning. Akka's own
/// PinnedDispatcher configurator accepts no other executor, hence this one. HOCON:
/// <c>type = "Firezone.Actors.Actors.Tunnel.IoDispatcherConfigurator, Firezone.Actors.Actors"</c>.
/// </summary>
public sealed class IoDispatcherConfigurator(Config config, IDispatcherPrerequisites prerequisites)
    : MessageDispatcherConfigurator(config, prerequisites)
{
    /// <summary>A new dispatcher, and so a new thread, for every actor (as PinnedDispatcherConfigurator).</summary>
    public override MessageDispatcher Dispatcher() =>
        new PinnedDispatcher(
            this,
            Config.GetString("id"),
            Config.GetInt("throughput", 5),
            Config.GetTimeSpan("throughput-deadline-time", TimeSpan.Zero).Ticks,
            new ExecutorFactory(Config, Prerequisites),
            Config.GetTimeSpan("shutdown-timeout", TimeSpan.FromSeconds(1)));

    private sealed class ExecutorFactory(Config config, IDispatcherPrerequisites prerequisites)
        : ExecutorServiceConfigurator(config, prerequisites)
    {
        public override ExecutorService Produce(string id) => new IoThreadExecutor(id);
    }
}
