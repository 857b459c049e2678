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
/// the start (what was made is removed).
/// </summary>
public sealed class WgQuickHooksHostedService(
    WgQuickHookRunner runner, WgQuickHookStage onStart, WgQuickHookStage onStop, IHostApplicationLifetime lifetime, ILogger logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => runner.RunAsync(onStart, cancellationToken);

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!lifetime.ApplicationStarted.IsCancellationRequested)
        {
            return; // the start failed or was cut short: wg-quick's up runs no down hooks either
        }
        try
        {
            // Not bound by the host's shutdown token: a hook that removes a firewall rule should
            // finish; systemd's TimeoutStopSec bounds it.
            await runner.RunAsync(onStop, CancellationToken.None).ConfigureAwait(false);
        }
        catch (StartupException e)
        {
            // wg-quick down stops at a failing hook; the daemon still takes the interface down.
            logger.LogError("{Problem}", e.Message);
        }
    }
}
