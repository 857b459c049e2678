namespace Firezone.Actors.Host.Control;

/// <summary>A control operation the tunnel refused, with the errno the UAPI reports (EADDRINUSE, EINVAL...).</summary>
public sealed class TunnelControlException(int errno, string message) : Exception(message)
{
    public int Errno { get; } = errno;
}
