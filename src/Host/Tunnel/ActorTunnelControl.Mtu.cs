using Firezone.Actors.Native;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>Following the TUN interface's MTU: the link watch, and a rebuild on bigger packet buffers when packets would not fit.</summary>
public sealed partial class ActorTunnelControl
{
    /// <summary>
    /// Follows the TUN device's MTU (wg-quick sets it after the daemon started; an administrator may
    /// change it): every link change the kernel announces re-reads it (<see cref="LinkChangeSignal"/>,
    /// as wireguard-go does). Nothing runs while nothing changes; polling once a second only when the
    /// announcements are unavailable.
    /// </summary>
    private void FollowMtu()
    {
        var linkChanges = new LinkChangeSignal(options.InterfaceName, logger, MtuPollInterval, watchIndex: _tun?.Index ?? 0);
        _linkChanges = linkChanges;
        _mtuWatch = Task.Run(() => WatchMtuAsync(linkChanges));
    }

    private async Task WatchMtuAsync(LinkChangeSignal linkChanges)
    {
        try
        {
            while (true)
            {
                await linkChanges.WaitAsync(_stopping.Token).ConfigureAwait(false);
                // Waits for a reconfiguration to finish rather than skipping: a change is announced once.
                await _gate.WaitAsync(_stopping.Token).ConfigureAwait(false);
                try
                {
                    await RefreshMtuAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (!_stopping.IsCancellationRequested)
                {
                    // RefreshMtuAsync handles a device that is going away (the TUN reader reports it);
                    // what reaches here is a rebuild onto larger buffers that failed, and the start
                    // after it if it stopped the running tunnel: then no tunnel runs.
                    logger.LogError("Following the MTU and state of {Interface} failed: {Problem}; {State:l}",
                        options.InterfaceName, e.Message, _linkDown
                            ? "the link is down; the tunnel starts when it is up"
                            : _tunnel is null && _privateKey is not null
                            ? "no tunnel runs until a key is set"
                            : "the tunnel may be down");
                }
                finally
                {
                    _gate.Release();
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    /// <summary>
    /// Re-reads the interface: its state (<see cref="FollowLinkStateAsync"/>: a link set down stops the
    /// tunnel, set up starts it again) and its MTU into the engine, rebuilding on bigger buffers when
    /// packets would not fit. Under the gate.
    /// </summary>
    private async Task RefreshMtuAsync()
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
        catch (TunDeviceException e) when (e.Errno == Tmds.Linux.LibC.ENODEV && _tunnel is null && !_tun.IsAttached())
        {
            // No tunnel runs (no private key, or the link is down), so no TUN reader reports the loss:
            // deleting the interface (wg-quick down) stops the daemon here, as a removal (exit 0, as
            // wireguard-go). One moved to another network namespace is still attached: it is followed
            // again when it is back (it comes back down), and the daemon goes on meanwhile.
            string reason = $"TUN device {_tun.Name} is gone (deleted, or its network namespace removed)";
            logger.LogInformation("{Reason}; stopping", reason);
            services.GetService<Daemon.DaemonExit>()?.Removed(reason);
            services.GetService<IHostApplicationLifetime>()?.StopApplication();
            return;
        }
        catch (TunDeviceException)
        {
            return; // the device is going away; the TUN reader reports that
        }
        if (await FollowLinkStateAsync(link, downsAnnounced).ConfigureAwait(false))
        {
            return; // down (nothing runs), or just brought up on buffers that fit the MTU it has
        }
        var (name, mtu) = (link.Name, link.Mtu);
        if (PacketBufferSizing.BufferSizeFor(mtu) > _pool.BufferSize)
        {
            logger.LogWarning(
                "MTU {Mtu} of {Interface} exceeds the {BufferSize}-byte packet buffers (MTU up to {MaxMtu}); rebuilding the tunnel on {NewSize}-byte buffers",
                mtu, name, _pool.BufferSize, PacketBufferSizing.MaxMtuFor(_pool.BufferSize), PacketBufferSizing.BufferSizeFor(mtu));
            bool running = _tunnel is not null;
            try
            {
                await RebuildAsync(newSocket: null, newPoolMtu: mtu, keepSessions: true).ConfigureAwait(false);
            }
            catch (Exception e) when (running && _tunnel is null && _privateKey is not null && !_stopping.IsCancellationRequested)
            {
                // It failed after the running tunnel stopped (a duplicate refused after a stop that
                // timed out): one is started again on the new buffers, without the handed-over
                // sessions, as a failed key change starts the previous key's. Nothing else would
                // start it: the next link change finds buffers that fit. Its failure is the watch's.
                await RebuildAsync(newSocket: null).ConfigureAwait(false);
                logger.LogError("Rebuilding the tunnel on bigger buffers failed ({Problem}); it was started again, with new sessions",
                    e.Message.ReplaceLineEndings(" "));
            }
            return;
        }
        if (_device is { } device && device.Mtu != mtu)
        {
            logger.LogInformation("MTU of {Interface} is now {Mtu}", name, mtu);
            device.Mtu = mtu;
        }
    }
}
