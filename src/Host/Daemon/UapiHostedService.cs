using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Uapi;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Daemon;

/// <summary>
/// Serves the UAPI socket for the life of the host (and, in service mode, first applies the
/// configuration file). Removing the socket file stops the host, as with wireguard-go.
/// </summary>
public sealed class UapiHostedService(
    DaemonOptions options,
    ITunnelControl control,
    IHostApplicationLifetime lifetime,
    ILogger<UapiHostedService> logger,
    Network.ConfigSaver? saver = null) : IHostedService, IAsyncDisposable
{
    private UapiServer? _server;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Config is { } config)
        {
            await TunnelConfigApplier.ApplyAsync(config, control, cancellationToken).ConfigureAwait(false);
            logger.LogInformation("Configuration {ConfigFile} applied: {PeerCount} peer(s)", config.SourcePath, config.Peers.Count);
        }
        // A peer `systemctl reload` (wg syncconf), `wg setconf` or `wg set` creates gets the ECN mode
        // the file names for it as it reads then.
        // In wireguard-go mode every peer gets --ecn-mode's (wg strips a file's directives).
        Func<NewPeerEcnMode>? newPeerEcnModes = options.Config is { } file ? new Config.FileEcnModes(file, logger).Read
            : options.PeerEcnMode is { } mode ? () => _ => mode : null;
        Func<CancellationToken, Task<string>>? save = saver is null ? null : async token =>
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(token);
            limit.CancelAfter(Network.ConfigSaver.Limit);
            return await saver.SaveAsync(limit.Token).ConfigureAwait(false);
        };
        _server = UapiServer.Start(UapiSocketPath.For(options.InterfaceName, options.SocketDirectory), control, logger, newPeerEcnModes, save);
        _ = _server.SocketRemoved.ContinueWith(_ => lifetime.StopApplication(), CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync().ConfigureAwait(false);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _server, null) is { } server)
        {
            await server.DisposeAsync().ConfigureAwait(false);
        }
    }
}
