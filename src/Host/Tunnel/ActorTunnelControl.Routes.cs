using Firezone.Actors.Native;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>Following the host's route changes, for the local addresses the peers are sent from (<see cref="LinuxUdpSocket.RoutesChanged"/>).</summary>
public sealed partial class ActorTunnelControl
{
    private RouteChangeListener? _routeChanges;

    /// <summary>
    /// Tells the socket of every route change but the tunnel's own routes, as wireguard-go's route
    /// listener does: a Client whose default route moved to another uplink then sends from the
    /// kernel's choice until datagrams arrive at an address again, and its Gateway roams to it.
    /// </summary>
    private void FollowRoutes()
    {
        try
        {
            _routeChanges = new RouteChangeListener(_tun?.Index ?? 0, OnRoutesChanged,
                e => logger.LogWarning("Stopped following the host's route changes: {Problem}; after one, a peer is sent to from the local address it last came to until a handshake retry", e.Message));
        }
        catch (IOException e)
        {
            logger.LogWarning("Cannot follow the host's route changes: {Problem}; after one, a peer is sent to from the local address it last came to until a handshake retry", e.Message);
        }
    }

    /// <summary>On the listener's thread.</summary>
    private void OnRoutesChanged()
    {
        Volatile.Read(ref _socket)?.RoutesChanged();
        logger.LogDebug("The routes of the host changed: each peer is sent to from the kernel's choice of address until a datagram arrives at its local address again");
    }
}
