using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

public sealed partial class InterfaceNetworkSetup
{
    /// <summary>How long after a ruleset change the table is looked for: a reload flushes, then adds its own tables.</summary>
    internal static readonly TimeSpan TableCheckDelay = TimeSpan.FromMilliseconds(200);

    private IDisposable? _tableWatch;
    private DebouncedCheck? _tableCheck;

    /// <summary>
    /// Starts a listener of the namespace's nftables changes (given <c>onChange</c> and
    /// <c>onFailure</c>; <see cref="Native.NftablesChangeListener"/> in the daemon, whose commands
    /// run in its own namespace); null, the default: the table is not watched.
    /// </summary>
    public Func<Action, Action<Exception>, IDisposable>? WatchNftables { get; init; }

    /// <summary>
    /// Watches the gateway's table for the life of the setup: `nft flush ruleset`, which Debian's
    /// /etc/nftables.conf starts with (so `systemctl reload nftables` runs it), or a firewall
    /// manager's reload, removed it under the running gateway, and nothing was masqueraded from then
    /// on, without a word (the service review). After each burst of ruleset changes (at most one
    /// check at a time, <see cref="TableCheckDelay"/> later) the table is looked for, and added
    /// again if it is gone, with a Warning (<see cref="DebouncedCheck"/>). Nothing runs while the
    /// ruleset does not change.
    /// </summary>
    private void WatchTable()
    {
        if (WatchNftables is null || _tableWatch is not null)
        {
            return;
        }
        _tableCheck = new DebouncedCheck(TableCheckDelay, CheckTableAsync,
            e => logger.LogError(e, "Checking nftables table inet {Table} failed: {Problem}", TableName, e.Message));
        try
        {
            _tableWatch = WatchNftables(_tableCheck.Request,
                e => logger.LogWarning("Stopped watching the nftables ruleset: {Problem}; if another program removes table inet {Table}, the gateway will not notice", e.Message, TableName));
        }
        catch (IOException e)
        {
            logger.LogWarning("Cannot watch the nftables ruleset: {Problem}; if another program removes table inet {Table} (nft flush ruleset, a reload of nftables.service), the gateway will not notice", e.Message, TableName);
        }
    }

    private async Task CheckTableAsync(CancellationToken cancellationToken)
    {
        try
        {
            string tables = await runner.RunAsync("nft", ["list", "tables"], null, cancellationToken).ConfigureAwait(false);
            var present = tables.Split('\n').Select(line => line.Trim()).ToHashSet(StringComparer.Ordinal);
            await RestoreMarkTablesAsync(present, cancellationToken).ConfigureAwait(false);
            if (!_state.NftablesTable || present.Contains("table inet " + TableName))
            {
                return;
            }
            await runner.RunAsync("nft", ["-f", "-"], TableScript(), cancellationToken).ConfigureAwait(false);
            logger.LogWarning("nftables table inet {Table} was removed by another program (nft flush ruleset, as a reload of nftables.service runs it): added again, so traffic from {Interface} is masqueraded again", TableName, interfaceName);
        }
        catch (StartupException e)
        {
            logger.LogWarning("nftables table inet {Table} was removed by another program and could not be added again: {Problem}; restart the interface", TableName, e.Message);
        }
    }

    /// <summary>Stops the watch and waits for a check under way, before the stop deletes the table itself.</summary>
    private async Task StopWatchingTableAsync()
    {
        if (_tableCheck is not null)
        {
            await _tableCheck.StopAsync().ConfigureAwait(false);
        }
        _tableWatch?.Dispose();
        _tableWatch = null;
    }
}
