namespace Firezone.Actors.Host.Uapi;

/// <summary>A UAPI request that cannot be carried out; answered with <c>errno=-Errno</c>.</summary>
public sealed class UapiException(int errno, string message) : Exception(message)
{
    public int Errno { get; } = errno;
}
