namespace Firezone.Actors.Host.Uapi;

/// <summary>
/// Linux errno values the UAPI reports. wireguard-go writes them negated (<c>errno=-22</c>,
/// ipc/uapi_unix.go), and wg(8) turns that back into EINVAL (ipc-uapi.h), so we do the same.
/// </summary>
public static class UapiErrno
{
    public const int EIO = 5;
    public const int EINVAL = 22;
    public const int EPROTO = 71;
    public const int EOPNOTSUPP = 95;
    public const int EADDRINUSE = 98;

    /// <summary>wireguard-go's IpcErrorUnknown (ENOANO).</summary>
    public const int Unknown = 55;
}
