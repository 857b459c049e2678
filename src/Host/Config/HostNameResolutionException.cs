namespace Firezone.Actors.Host.Config;

/// <summary>A host name that did not resolve, with the resolver's reason ("Name or service not known", ...).</summary>
public sealed class HostNameResolutionException(string host, string reason) : Exception($"cannot resolve the host name {host}: {reason}")
{
    public string Host { get; } = host;

    public string Reason { get; } = reason;
}
