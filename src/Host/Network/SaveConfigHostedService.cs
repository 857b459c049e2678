using Firezone.Actors.Host.Control;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>
/// Service mode's <c>SaveConfig = true</c>, as wg-quick down runs save_config: on stop, after
/// PreDown and before the interface is taken down, <see cref="ConfigSaver"/> rewrites the file with
/// the interface's state as it is then, when the file says <c>SaveConfig = true</c> as it reads then
/// (wg-quick down reads it again too). As in wg-quick nothing is saved after a failed start or a
/// failed PreDown. Unlike wg-quick, a save that fails is logged at Error and the stop goes on
/// (wg-quick down would stop there and leave the interface up). Registered between the UAPI service
/// and the PostUp/PreDown hooks (see TunnelDaemon), so the tunnel still answers when it runs.
/// </summary>
public sealed class SaveConfigHostedService(ConfigSaver saver, IHostApplicationLifetime lifetime, ILogger<SaveConfigHostedService> logger,
    WgQuickHookRunner? hooks = null) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!lifetime.ApplicationStarted.IsCancellationRequested)
        {
            return; // a start that failed or was cut short: wg-quick up saves nothing either
        }
        if (hooks is { PreDownFailed: true })
        {
            if (saver.SaveConfigAtStart)
            {
                logger.LogWarning("SaveConfig: {ConfigFile} not saved: a PreDown failed (wg-quick down stops there too)", saver.FilePath);
            }
            return;
        }
        // Not the host's shutdown token (2 s from the stop), which a slow PreDown may have used up.
        using var limit = new CancellationTokenSource(ConfigSaver.Limit);
        try
        {
            await saver.SaveOnStopAsync(limit.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or StartupException or TunnelControlException or OperationCanceledException)
        {
            string problem = e is OperationCanceledException ? $"did not finish within {ConfigSaver.Limit.TotalSeconds:0} s" : e.Message;
            logger.LogError("SaveConfig: {ConfigFile} not saved: {Problem}", saver.FilePath, problem);
        }
        catch (Exception e)
        {
            // A defect here must not keep the interface, routes and rules from being taken down.
            logger.LogError(e, "SaveConfig: {ConfigFile} not saved: unexpected failure", saver.FilePath);
        }
    }
}
