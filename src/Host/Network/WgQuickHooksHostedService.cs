using Firezone.Actors.Host.Config;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>
/// One pair of hook stages around the services registered inside it: the host starts services in
/// order and stops them in reverse, so one instance registered before the tunnel runs PreUp before
/// the interface exists and PostDown once it is gone, and one registered after the UAPI service runs
/// PostUp once the interface is up with its addresses and routes (before READY=1) and PreDown first
/// on stop. As with wg-quick, a start that fails runs no down hooks, and a failing up hook fails
/// the start (what was made is removed). Both instances share one <see cref="WgQuickHookRunner"/>.
/// </summary>
public sealed class WgQuickHooksHostedService(
    WgQuickHookRunner runner, WgQuickHookStage onStart, WgQuickHookStage onStop, IHostApplicationLifetime lifetime, ILogger logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        // wg-quick up stops with "`wg0' already exists" before its PreUp runs; a PreUp's firewall
        // rules would otherwise stay behind when the TUN device cannot be made under that name.
        if (onStart == WgQuickHookStage.PreUp && runner.InterfaceExists())
        {
            throw new StartupException($"{runner.InterfaceName} already exists: no PreUp run (wg-quick up stops there too)") { NameTaken = true };
        }
        return runner.RunAsync(onStart, cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!lifetime.ApplicationStarted.IsCancellationRequested)
        {
            return; // the start failed or was cut short: wg-quick's up runs no down hooks either
        }
        // Not bound by the host's shutdown token (2 s), which a hook that removes firewall rules may
        // need more than; bound so the daemon still takes its interface down before systemd's
        // TimeoutStopSec kills it.
        using var limit = new CancellationTokenSource(WgQuickHookRunner.DownHookLimit);
        try
        {
            await runner.RunAsync(onStop, limit.Token).ConfigureAwait(false);
        }
        catch (StartupException e)
        {
            // wg-quick down stops at a failing hook; the daemon still takes the interface down.
            logger.LogError("{Problem}", e.Message);
        }
        catch (OperationCanceledException) when (limit.IsCancellationRequested)
        {
            logger.LogError("{Stage} did not finish within {Seconds} s: its hook was stopped", onStop, WgQuickHookRunner.DownHookLimit.TotalSeconds);
        }
    }
}
