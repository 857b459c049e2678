using Firezone.Actors.Host.Control;
using Firezone.Actors.Native;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// Following the interface's administrative state as the kernel's WireGuard does (wg_stop and
/// wg_open in drivers/net/wireguard/device.c): <c>ip link set wg0 down</c> stops the tunnel and
/// closes its UDP port (no keepalives, no handshakes, nothing answered), <c>up</c> binds the port
/// again and starts the tunnel with its peers (a peer with persistent keepalive sends one at once).
/// The configuration stays, and changes made while down (key, port, peers) take effect at up; a
/// port set while down is stored, as the kernel's set_port stores it. wireguard-go means to do the
/// same (Device.Down on a link event), but the Debian 12 build misses the event: its netlink
/// listener reports a down link only after an up in the same read, so it goes on as if up.
/// Unlike the kernel, which stops inside <c>ip link set down</c>, the daemon acts when it reads the
/// link's state (each link announcement, each UAPI get and key or port set), and a down followed at
/// once by up is known from the kernel's down announcement (<see cref="LinkChangeSignal.DownsAnnounced"/>;
/// a get or set made before the listener read it finds the link up and goes on, and the restart
/// follows when it has); and a port that cannot be bound at up does
/// not fail <c>ip link set up</c> as the kernel's failed open does: the error is logged and the bind
/// retried at each of those reads, or on the port a <c>wg set listen-port</c> gives.
/// </summary>
public sealed partial class ActorTunnelControl
{
    // The interface was seen down (IFF_UP cleared) and the tunnel stopped for it. Under the gate.
    // With the link up, no socket means its bind at up failed (retried at each look).
    private bool _linkDown;
    // The link listener's down announcements this instance has accounted for: those it acted on,
    // and those of downs it saw itself before their announcement was read. Under the gate.
    private long _downsAccountedFor;

    /// <summary>
    /// The TUN interface as it is now, by its index (a renamed interface is still ours, as wireguard-go
    /// goes on running through a rename), and the link listener's count of down announcements (0
    /// when polling), read before it: a down announced after the state was read is one it does not
    /// show yet. Throws <see cref="TunDeviceException"/> (ENODEV: not in this namespace). Under the gate.
    /// </summary>
    private LinkState ReadLink(LinuxTunDevice tun, out long downsAnnounced)
    {
        downsAnnounced = _linkChanges?.DownsAnnounced ?? 0;
        return NetworkInterfaceControl.GetLink(tun.Index);
    }

    /// <summary>
    /// Acts on <paramref name="link"/>'s state when it changed since the last look (or a bind at up
    /// failed): true when the caller has nothing more to do (the link is down; or it came up and the
    /// tunnel was started on its current MTU, or could not be). <paramref name="downsAnnounced"/>
    /// (read before the state): more downs than accounted for means the link went down and up again
    /// since the last look, and the tunnel stops and starts as the kernel's would. Under the gate.
    /// </summary>
    private async Task<bool> FollowLinkStateAsync(LinkState link, long downsAnnounced)
    {
        bool missedDown = downsAnnounced > _downsAccountedFor;
        _downsAccountedFor = Math.Max(_downsAccountedFor, downsAnnounced);
        if (!link.Up || (missedDown && !_linkDown))
        {
            if (!_linkDown)
            {
                if (!link.Up && !missedDown)
                {
                    _downsAccountedFor++; // seen before its announcement was read: that one is this
                }
                await StopForLinkDownAsync(link.Name).ConfigureAwait(false);
            }
            if (!link.Up)
            {
                return true;
            }
        }
        if (!_linkDown && _socket is not null)
        {
            return false;
        }
        await StartForLinkUpAsync(link.Name, link.Mtu).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Before a key or port is set: reads the link's state and acts on a change the link watch has not
    /// seen yet, so that a key or port set right after <c>ip link set down</c> is only stored. A link
    /// found up again (with a key) gets its port bound but no tunnel: the caller's rebuild starts it
    /// on the new settings (starting it on the old key or port first would send from them). Under
    /// the gate.
    /// </summary>
    private async Task SyncLinkStateAsync()
    {
        if (_tun is null)
        {
            return;
        }
        LinkState link;
        long downsAnnounced;
        try
        {
            link = ReadLink(_tun, out downsAnnounced);
        }
        catch (TunDeviceException)
        {
            return; // gone or going (or moved to another namespace): the link watch and the TUN reader see to it
        }
        if (!link.Up || _privateKey is null)
        {
            // Without a key nothing would be sent from the old settings: up binds the port as usual.
            await FollowLinkStateAsync(link, downsAnnounced).ConfigureAwait(false);
            return;
        }
        if (downsAnnounced > _downsAccountedFor && !_linkDown)
        {
            await StopForLinkDownAsync(link.Name).ConfigureAwait(false); // down and up since the last look
        }
        _downsAccountedFor = Math.Max(_downsAccountedFor, downsAnnounced);
        if (_linkDown)
        {
            _linkDown = false;
            try
            {
                _socket ??= Bind(_listenPort);
            }
            catch (TunnelControlException)
            {
                // Left unbound: a set stores the key or binds the port it gives; each look retries.
            }
            logger.LogInformation("{Interface} is up: the tunnel starts on the settings being applied", link.Name);
        }
    }

    private async Task StopForLinkDownAsync(string name)
    {
        _linkDown = true;
        bool running = _tunnel is not null;
        int generation = _generation;
        if (_socket is not null && _listenPort == 0)
        {
            // As the kernel's WireGuard: the port it picked is the one bound again at up.
            _listenPort = (ushort)_socket.LocalPort;
        }
        try
        {
            // With the link down, the rebuild stops the running tunnel (its peers' figures and
            // endpoints are carried, as for any rebuild) and starts none.
            await RebuildAsync(newSocket: null).ConfigureAwait(false);
        }
        finally
        {
            // Closed also when the stop failed: while down nothing is bound, and up binds the port set.
            _socket?.Dispose();
            _socket = null;
        }
        logger.LogInformation("{Interface} is down: {Tunnel:l} and UDP port {Port} closed; both start again when it is up (as with the kernel's WireGuard)",
            name, running ? $"tunnel {generation} stopped" : "no tunnel was running", _listenPort);
    }

    /// <summary>Binds the port and starts the tunnel (with a key) after the link came up, or retries a bind that failed then.</summary>
    private async Task StartForLinkUpAsync(string name, int mtu)
    {
        bool retry = !_linkDown;
        _linkDown = false;
        try
        {
            _socket ??= Bind(_listenPort);
        }
        catch (TunnelControlException e)
        {
            // Once at Error; the retries (each link announcement, `wg show`) at Debug.
            logger.Log(retry ? LogLevel.Debug : LogLevel.Error,
                "{Interface} is up, but UDP port {Port} could not be bound ({Problem}): no tunnel runs; the bind is tried again at the next link change or `wg show`, or use another port (wg set {Interface} listen-port N)",
                name, _listenPort, e.Message, name);
            return;
        }
        if (retry)
        {
            logger.LogInformation("{Interface}: UDP port {Port} bound at last", name, _socket.LocalPort);
        }
        if (_privateKey is null)
        {
            logger.LogInformation("{Interface} is up (MTU {Mtu}): listening on UDP port {Port} again; no tunnel runs until a key is set", name, mtu, _socket.LocalPort);
            return;
        }
        try
        {
            await RebuildAsync(newSocket: null).ConfigureAwait(false);
            logger.LogInformation("{Interface} is up (MTU {Mtu}): tunnel {Generation} started", name, _device?.Mtu ?? mtu, _generation);
        }
        catch (Exception e) when (!_stopping.IsCancellationRequested)
        {
            logger.LogError("{Interface} is up, but the tunnel could not be started ({Problem}): no tunnel runs until the key or port is set again or the link is set down and up again",
                name, e.Message.ReplaceLineEndings(" "));
        }
    }
}
