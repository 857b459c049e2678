using Akka.Actor;
using Akka.Configuration;
using Firezone.Actors.Actors.Batches;

namespace Firezone.Actors.Actors.Tunnel;

/// <summary>The composition entry point for the host: starts a tunnel in an actor system.</summary>
public static class Tunnels
{
    public const string ReclaimerName = "buffer-reclaimer";

    /// <summary>
    /// How long a stopping reader actor (TunReader, SocketIO) waits for its thread to end after
    /// waking it: shorter than the bound the host gives a whole tunnel to stop (2 s), so a thread
    /// busy in a read never makes the host give up on a stop the actors are still making. A thread
    /// that does not end within it is left to end on its own and counted
    /// (<see cref="TunnelCounters.ReaderThreadsRunning"/>), so that the host does not reuse or close
    /// its device under it. A woken thread ends within a read; a second means it is stuck.
    /// </summary>
    public static readonly TimeSpan ReaderStopBound = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The dispatcher of the actors that make blocking system calls on a message (SocketIO's sendmmsg,
    /// which may wait for socket-buffer room; TunWriter's writes; the joins of TunReader's and SocketIO's
    /// reader threads when they stop, see <see cref="ReaderStopBound"/>). A PinnedDispatcher gives each its own
    /// thread, so a stalled send never holds a thread of the shared default dispatcher that the peer
    /// actors and the supervisor run on. Its threads sleep without spinning (<see cref="IoDispatcherConfigurator"/>).
    /// A host may define it in its own HOCON; otherwise
    /// <see cref="EnsureIoDispatcher"/> supplies this default as a fallback.
    /// </summary>
    public const string IoDispatcherId = "firezone-tunnel-io-dispatcher";

    private const string IoDispatcherHocon = IoDispatcherId + @" {
    type = ""Firezone.Actors.Actors.Tunnel.IoDispatcherConfigurator, Firezone.Actors.Actors""
}";

    /// <summary>
    /// Installs the <see cref="BufferReclaimer"/> (once per system) and starts a <see cref="TunnelActor"/>
    /// named <paramref name="name"/> under /user. Send it the control messages; watch it, or set
    /// <see cref="TunnelSettings.FailureListener"/>, to learn when it stops on an I/O fault.
    /// </summary>
    public static IActorRef Start(ActorSystem system, TunnelSettings settings, string name = "tunnel")
    {
        InstallReclaimer(system);
        EnsureIoDispatcher(system);
        return system.ActorOf(TunnelActor.Props(settings), name);
    }

    /// <summary>
    /// Makes <see cref="IoDispatcherId"/> resolvable in <paramref name="system"/>: a definition already in
    /// the system's configuration wins (InjectTopLevelFallback only fills what is missing).
    /// </summary>
    public static void EnsureIoDispatcher(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        lock (system)
        {
            if (!system.Settings.Config.HasPath(IoDispatcherId))
            {
                system.Settings.InjectTopLevelFallback(ConfigurationFactory.ParseString(IoDispatcherHocon));
            }
        }
    }

    /// <summary>Starts the dead-letter buffer reclaimer unless this system already has one.</summary>
    public static IActorRef InstallReclaimer(ActorSystem system)
    {
        lock (system)
        {
            try
            {
                var reclaimer = system.ActorOf(BufferReclaimer.Props(), ReclaimerName);
                // Subscribe now, not only in its PreStart (which runs later, on a dispatcher thread):
                // a batch dead-lettered before then would never be recycled. A second Subscribe of
                // the same actor is a no-op.
                system.EventStream.Subscribe(reclaimer, typeof(Akka.Event.AllDeadLetters));
                return reclaimer;
            }
            catch (InvalidActorNameException)
            {
                return system.ActorSelection("/user/" + ReclaimerName).ResolveOne(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
            }
        }
    }
}
