using Akka.Actor;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Host.Daemon;
using Microsoft.Extensions.Hosting;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// Receives <see cref="TunnelFailed"/> from the TunnelActor (its FailureListener) and stops the
/// host with that reason as the exit error.
/// </summary>
public sealed class TunnelFailureListener : ReceiveActor
{
    public TunnelFailureListener(DaemonExit exit, IHostApplicationLifetime lifetime)
    {
        Receive<TunnelFailed>(failed =>
        {
            if (failed.DeviceRemoved)
            {
                exit.Removed(failed.Reason);
            }
            else
            {
                exit.Fail(failed.Reason);
            }
            lifetime.StopApplication();
        });
    }

    public static Props Props(DaemonExit exit, IHostApplicationLifetime lifetime) =>
        Akka.Actor.Props.Create(() => new TunnelFailureListener(exit, lifetime));
}
