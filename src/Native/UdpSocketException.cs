namespace Firezone.Actors.Native;

/// <summary>A UDP socket could not be created or bound, or failed. The message is meant for the user.</summary>
public sealed class UdpSocketException(string message, int errno = 0, Exception? inner = null) : IOException(message, inner)
{
    /// <summary>The errno behind the failure, or 0.</summary>
    public int Errno { get; } = errno;
}
