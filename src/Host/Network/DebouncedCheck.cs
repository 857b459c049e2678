namespace Firezone.Actors.Host.Network;

/// <summary>
/// Runs a check a moment after a burst of announcements (a netlink listener's thread calls
/// <see cref="Request"/>), at most one waiting and one running at a time, one after the other:
/// announcements during the wait are covered by the check to come, and any during a check schedule
/// another, which starts only after it. <see cref="StopAsync"/> ends the waiting and waits for a
/// check under way, so that nothing runs after it (a stop that undoes what the check would restore).
/// </summary>
internal sealed class DebouncedCheck(TimeSpan delay, Func<CancellationToken, Task> check, Action<Exception> onFailure)
{
    private readonly object _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _last = Task.CompletedTask;
    private int _pending;

    /// <summary>Schedules the check <c>delay</c> from now unless one is waiting; thread-safe; nothing after <see cref="StopAsync"/>.</summary>
    public void Request()
    {
        if (Interlocked.Exchange(ref _pending, 1) == 1)
        {
            return;
        }
        lock (_lock)
        {
            if (!_stop.IsCancellationRequested)
            {
                _last = RunAsync(_last, _stop.Token);
            }
        }
    }

    private async Task RunAsync(Task previous, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            await previous.ConfigureAwait(false); // never faults: see the catch below
            // Announcements from here on schedule another check: this one may already have read past them.
            Volatile.Write(ref _pending, 0);
            await check(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The stop.
        }
        catch (Exception e)
        {
            // A fire-and-forget task: nothing may escape unobserved.
            onFailure(e);
        }
    }

    /// <summary>Ends the waiting check and waits for one under way; later requests do nothing.</summary>
    public async Task StopAsync()
    {
        Task last;
        lock (_lock)
        {
            _stop.Cancel();
            last = _last;
        }
        await last.ConfigureAwait(false);
    }
}
