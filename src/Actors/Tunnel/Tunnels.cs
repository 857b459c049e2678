using Akka.Actor;
using Firezone.Actors.Actors.Batches;

namespace Firezone.Actors.Actors.Tunnel;

/// <summary>The composition entry point for the host: starts a tunnel in an actor system.</summary>
public static class Tunnels
{
    public const string ReclaimerName = "buffer-reclaimer";

    /// <summary>
    /// Installs the <see cref="BufferReclaimer"/> (once per system) and starts a <see cref="TunnelActor"/>
    /// named <paramref name="name"/> under /user. Send it the control messages; watch it, or set
    /// <see cref="TunnelSettings.FailureListener"/>, to learn when it stops on an I/O fault.
    /// </summary>
    public static IActorRef Start(ActorSystem system, TunnelSettings settings, string name = "tunnel")
    {
        InstallReclaimer(system);
        return system.ActorOf(TunnelActor.Props(settings), name);
    }

    /// <summary>Starts the dead-letter buffer reclaimer unless this system already has one.</summary>
    public static IActorRef InstallReclaimer(ActorSystem system)
    {
        lock (system)
        {
            try
            {
                return system.ActorOf(BufferReclaimer.Props(), ReclaimerName);
            }
            catch (InvalidActorNameException)
            {
                return system.ActorSelection("/user/" + ReclaimerName).ResolveOne(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
            }
        }
    }
}
