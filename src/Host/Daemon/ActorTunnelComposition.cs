using Microsoft.Extensions.DependencyInjection;

namespace Firezone.Actors.Host.Daemon;

/// <summary>
/// The production tunnel: TUN device and UDP socket from src/Native, the actor topology from
/// src/Actors, composed with Akka.Hosting. The actor topology is being built on another branch;
/// until it is merged this composition refuses to start with a clear message rather than pretend.
/// </summary>
public sealed class ActorTunnelComposition : ITunnelComposition
{
    public void Compose(IServiceCollection services, DaemonOptions options) =>
        throw new StartupException("this build has no tunnel engine yet: the actor topology (src/Actors) is not wired into the host");
}
