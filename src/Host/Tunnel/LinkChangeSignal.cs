using Firezone.Actors.Native;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// Says when the network interfaces of this namespace may have changed, so that ActorTunnelControl
/// re-reads its TUN device's MTU and state (hence the wording of the warning), and whether its
/// interface was announced down meanwhile (<see cref="DownsAnnounced"/>). It listens to the kernel's link
/// announcements (<see cref="LinkChangeListener"/>: nothing runs while nothing changes). When that
/// listener cannot be opened, or fails later, it falls back to a signal at once and then every
/// <c>pollInterval</c> (announcements may have been lost), and logs a warning that names the
/// interface and the problem. A burst of changes leaves one signal pending: the reader re-reads
/// the state as it is then.
/// </summary>
public sealed class LinkChangeSignal : IDisposable
{
    /// <summary>Starts listening for link changes; returns what stops it. Throws <see cref="IOException"/> when it cannot.</summary>
    public delegate IDisposable Listen(Action changed, Action<Exception> failed);


    private readonly string _interfaceName;
    private readonly ILogger _logger;
    private readonly TimeSpan _pollInterval;
    // Released once per burst (at most one pending: bursts coalesce).
    private readonly SemaphoreSlim _changed = new(0, 1);
    private IDisposable? _listener;
    private Timer? _poll;
    private int _disposed;
    // Counted by the listener each time the watched interface was announced going down.
    private long _downsAnnounced;

    /// <param name="interfaceName">For the log: what the signal is followed for.</param>
    /// <param name="logger">Gets the warning when the signal falls back to polling.</param>
    /// <param name="pollInterval">How often to signal when the listener is unavailable.</param>
    /// <param name="listen">The listener (the kernel's announcements over netlink, <see cref="LinkChangeListener"/>, unless a test supplies another).</param>
    /// <param name="watchIndex">The interface whose downs <see cref="DownsAnnounced"/> counts (netlink only; 0: none).</param>
    public LinkChangeSignal(string interfaceName, ILogger logger, TimeSpan pollInterval, Listen? listen = null, int watchIndex = 0)
    {
        _interfaceName = interfaceName;
        _logger = logger;
        _pollInterval = pollInterval;
        listen ??= (changed, failed) => new LinkChangeListener(changed, failed, watchIndex, () => Interlocked.Increment(ref _downsAnnounced));
        try
        {
            var listener = listen(Signal, e => FallBackToPolling(e.Message));
            if (Interlocked.CompareExchange(ref _listener, listener, null) is not null || Volatile.Read(ref _disposed) != 0)
            {
                listener.Dispose(); // it failed at once (we poll already), or we were disposed meanwhile
            }
        }
        catch (IOException e)
        {
            FallBackToPolling(e.Message);
        }
    }

    /// <summary>True once the signal comes from polling instead of the kernel's announcements.</summary>
    public bool Polling => Volatile.Read(ref _poll) is not null;

    /// <summary>
    /// How many times the watched interface was announced going from up to down so far, also when it
    /// is up again now (a down and up in quick succession): the state read then cannot tell.
    /// </summary>
    public long DownsAnnounced => Interlocked.Read(ref _downsAnnounced);

    /// <summary>Completes at the next change (or poll), or at once if one is pending.</summary>
    public Task WaitAsync(CancellationToken cancellationToken) => _changed.WaitAsync(cancellationToken);

    private void Signal()
    {
        // A signal pending already makes the reader look at the state as it is then (a race here
        // costs one more look).
        if (_changed.CurrentCount == 0)
        {
            try
            {
                _changed.Release();
            }
            catch (SemaphoreFullException)
            {
            }
        }
    }

    private void FallBackToPolling(string problem)
    {
        _logger.LogWarning("Following the MTU of {Interface} by polling every {Seconds} s: {Problem}",
            _interfaceName, _pollInterval.TotalSeconds, problem);
        var timer = new Timer(_ => Signal(), null, TimeSpan.Zero, _pollInterval);
        if (Interlocked.CompareExchange(ref _poll, timer, null) is not null || Volatile.Read(ref _disposed) != 0)
        {
            timer.Dispose();
            return;
        }
        // The listener that failed is of no more use (Dispose of a failed listener only frees it).
        // A placeholder in its slot keeps one that is still being created from being kept.
        Interlocked.Exchange(ref _listener, NoListener.Instance)?.Dispose();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Interlocked.Exchange(ref _listener, NoListener.Instance)?.Dispose();
        if (Interlocked.Exchange(ref _poll, null) is { } poll)
        {
            // Waits for a tick in progress, so no signal comes after Dispose returned.
            using var done = new ManualResetEvent(false);
            if (poll.Dispose(done))
            {
                done.WaitOne();
            }
        }
    }

    private sealed class NoListener : IDisposable
    {
        public static readonly NoListener Instance = new();
        public void Dispose() { }
    }
}
