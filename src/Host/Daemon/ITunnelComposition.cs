using Microsoft.Extensions.DependencyInjection;

namespace Firezone.Actors.Host.Daemon;

/// <summary>
/// Registers the running tunnel (TUN device, UDP socket, actor system) and the
/// <see cref="Control.ITunnelControl"/> in front of it. One production implementation
/// (the actor topology); tests substitute their own.
/// </summary>
public interface ITunnelComposition
{
    void Compose(IServiceCollection services, DaemonOptions options);
}
