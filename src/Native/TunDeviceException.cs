namespace Firezone.Actors.Native;

/// <summary>A TUN device could not be created or was lost. The message is meant for the user.</summary>
public sealed class TunDeviceException(string message, int errno = 0, Exception? inner = null) : IOException(message, inner)
{
    /// <summary>The errno behind the failure, or 0.</summary>
    public int Errno { get; } = errno;

    /// <summary>The device was deleted (or its network namespace removed): EBADFD on the descriptor.</summary>
    public bool DeviceGone => Errno == Tmds.Linux.LibC.EBADFD;
}
