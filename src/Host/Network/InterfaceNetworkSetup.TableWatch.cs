using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

public sealed partial class InterfaceNetworkSetup
{
    /// <summary>How long after a ruleset change the table is looked for: a reload flushes, then adds its own tables.</summary>
    internal static readonly TimeSpan TableCheckDelay = TimeSpan.FromMilliseconds(200);

    private readonly object _watchLock = new();
    private readonly CancellationTokenSource _watchStop = new();
    private IDisposable? _tableWatch;
    private Task _tableCheck = Task.CompletedTask;
    private int _tableCheckPending;

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
    /// again if it is gone, with a Warning. Nothing runs while the ruleset does not change.
    /// </summary>
    private void WatchTable()
    {
        if (WatchNftables is null || _tableWatch is not null)
        {
            return;
        }
        try
        {
            _tableWatch = WatchNftables(OnRulesetChanged,
                e => logger.LogWarning("Stopped watching the nftables ruleset: {Problem}; if another program removes table inet {Table}, the gateway will not notice", e.Message, TableName));
        }
        catch (IOException e)
        {
            logger.LogWarning("Cannot watch the nftables ruleset: {Problem}; if another program removes table inet {Table} (nft flush ruleset, a reload of nftables.service), the gateway will not notice", e.Message, TableName);
        }
    }

    /// <summary>On the listener's thread: schedules a check unless one is pending.</summary>
    private void OnRulesetChanged()
    {
        if (Interlocked.Exchange(ref _tableCheckPending, 1) == 1)
        {
            return;
        }
        lock (_watchLock)
        {
            if (!_watchStop.IsCancellationRequested)
            {
                _tableCheck = CheckTableAsync(_watchStop.Token);
            }
        }
    }

    private async Task CheckTableAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(TableCheckDelay, cancellationToken).ConfigureAwait(false);
            // Changes from here on schedule another check: this one may already have read past them.
            Volatile.Write(ref _tableCheckPending, 0);
            string tables = await runner.RunAsync("nft", ["list", "tables"], null, cancellationToken).ConfigureAwait(false);
            if (tables.Split('\n').Any(line => line.Trim() == "table inet " + TableName))
            {
                return;
            }
            await runner.RunAsync("nft", ["-f", "-"], TableScript(), cancellationToken).ConfigureAwait(false);
            logger.LogWarning("nftables table inet {Table} was removed by another program (nft flush ruleset, as a reload of nftables.service runs it): added again, so traffic from {Interface} is masqueraded again", TableName, interfaceName);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The stop.
        }
        catch (StartupException e)
        {
            logger.LogWarning("nftables table inet {Table} was removed by another program and could not be added again: {Problem}; restart the interface", TableName, e.Message);
        }
        catch (Exception e)
        {
            // A fire-and-forget task: nothing may escape unobserved.
            logger.LogError(e, "Checking nftables table inet {Table} failed: {Problem}", TableName, e.Message);
        }
    }

    /// <summary>Stops the watch and waits for a check under way, before the stop deletes the table itself.</summary>
    private async Task StopWatchingTableAsync()
    {
        Task check;
        lock (_watchLock)
        {
            _watchStop.Cancel();
            check = _tableCheck;
        }
        _tableWatch?.Dispose();
        _tableWatch = null;
        await check.ConfigureAwait(false);
    }
}
