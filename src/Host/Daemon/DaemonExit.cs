namespace Firezone.Actors.Host.Daemon;

/// <summary>
/// Why the daemon is stopping, when it is not because it was asked to: the tunnel's TUN device or
/// socket was lost (STYLE rule 9: the host exits with a clear error).
/// </summary>
public sealed class DaemonExit
{
    private string? _failure;

    public string? Failure => Volatile.Read(ref _failure);

    public void Fail(string reason) => Interlocked.CompareExchange(ref _failure, reason, null);
}
