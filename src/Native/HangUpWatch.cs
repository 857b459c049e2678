using System.Runtime.InteropServices;

namespace Firezone.Actors.Native;

/// <summary>
/// One socket watched by a <see cref="HangUpWatcher"/> until disposed: <see cref="HungUp"/> is
/// cancelled when its peer has closed it. Holds a reference on the socket's handle meanwhile, so its
/// descriptor cannot be closed and reused under the watch.
/// </summary>
public sealed class HangUpWatch : IDisposable
{
    private readonly HangUpWatcher _watcher;
    private readonly CancellationTokenSource _hungUp = new();

    internal HangUpWatch(HangUpWatcher watcher, SafeHandle socket, ulong id)
    {
        _watcher = watcher;
        Socket = socket;
        Id = id;
    }

    /// <summary>
    /// Cancelled when the peer has hung up. Its callbacks run on a pool thread, never on the
    /// watcher's: they may go on to serve the connection and dispose this watch.
    /// </summary>
    public CancellationToken HungUp => _hungUp.Token;

    internal SafeHandle Socket { get; }

    /// <summary>The watch's key in the epoll set: never reused, unlike the descriptor number.</summary>
    internal ulong Id { get; }

    internal void Signal() => _ = _hungUp.CancelAsync();

    /// <summary>Ends the watch (again: nothing); <see cref="HungUp"/> is never disposed, so a late signal is harmless.</summary>
    public void Dispose() => _watcher.Unwatch(this);
}
