using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Daemon;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>Service mode: addresses, routes and gateway rules for the life of the host.</summary>
public sealed class NetworkSetupHostedService(DaemonOptions options, ICommandRunner runner, ILogger<NetworkSetupHostedService> logger, ITunnelControl? control = null) : IHostedService
{
    private readonly InterfaceNetworkSetup _setup = new(options.InterfaceName, runner, logger, control);

    public Task StartAsync(CancellationToken cancellationToken) => _setup.ApplyAsync(options.Config!, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => _setup.TearDownAsync(CancellationToken.None);
}
