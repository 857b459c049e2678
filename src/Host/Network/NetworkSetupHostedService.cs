using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Daemon;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>Service mode: addresses, routes and gateway rules for the life of the host.</summary>
/// <param name="stateDirectory">Where <see cref="NetworkSetupStateFile"/> goes; <see cref="NetworkSetupStateFile.DefaultDirectory"/> by default.</param>
/// <param name="watchNftables">A gateway's watch of the nftables ruleset (<see cref="InterfaceNetworkSetup.WatchNftables"/>); null: none.</param>
/// <param name="watchAddresses">The watch of the interface's addresses (<see cref="InterfaceNetworkSetup.WatchAddresses"/>); null: none.</param>
public sealed class NetworkSetupHostedService(DaemonOptions options, ICommandRunner runner, ILogger<NetworkSetupHostedService> logger, ITunnelControl? control = null, string? stateDirectory = null,
    Func<Action, Action<Exception>, IDisposable>? watchNftables = null, Func<string, Action, Action<Exception>, IDisposable>? watchAddresses = null) : IHostedService
{
    private readonly InterfaceNetworkSetup _setup = new(options.InterfaceName, runner, logger, control, stateDirectory) { WatchNftables = watchNftables, WatchAddresses = watchAddresses };
    private bool _started;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _started = true;
        return _setup.ApplyAsync(options.Config!, cancellationToken);
    }

    /// <summary>
    /// Also after a failed start (to remove what it did add), but not when the host stopped before
    /// reaching it: a second instance whose TUN device was busy must not touch the first one's state.
    /// </summary>
    public Task StopAsync(CancellationToken cancellationToken) =>
        _started ? _setup.TearDownAsync(CancellationToken.None) : Task.CompletedTask;
}
