namespace Firezone.Actors.Host.Daemon;

/// <summary>
/// Why the daemon is stopping, when it is not because it was asked to: the tunnel's TUN device or
/// socket was lost (STYLE rule 9: the host exits with a clear error), or the TUN device was deleted,
/// which is how wg-quick down stops a userspace daemon (exit 0, as wireguard-go).
/// </summary>
public sealed class DaemonExit
{
    private string? _failure;

    public string? Failure => Volatile.Read(ref _failure);

    public void Fail(string reason) => Interlocked.CompareExchange(ref _failure, reason, null);

    private string? _removal;

    /// <summary>Why the tunnel stopped by itself without a failure: its TUN device was deleted (wg-quick down).</summary>
    public string? Removal => Volatile.Read(ref _removal);

    public void Removed(string reason) => Interlocked.CompareExchange(ref _removal, reason, null);
}
