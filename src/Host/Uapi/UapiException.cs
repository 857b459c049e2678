namespace Firezone.Actors.Host.Uapi;

/// <summary>A UAPI request that cannot be carried out; answered with <c>errno=-Errno</c>.</summary>
public sealed class UapiException(int errno, string message) : Exception(message)
{
    public int Errno { get; } = errno;

    /// <summary>The daemon closed the connection without any reply (wireguard-go does so on an operation it does not know).</summary>
    public bool NoReply { get; init; }
}
