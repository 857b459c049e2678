using Firezone.Actors.Host.Uapi;
using Microsoft.Extensions.Logging.Abstractions;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A UAPI server on /var/run/wireguard/NAME.sock (where wg(8) looks) under a unique name, backed by
/// <see cref="InMemoryTunnelControl"/>; disposing stops it and removes the socket file.
/// </summary>
internal sealed class UapiServerFixture : IAsyncDisposable
{
    private UapiServerFixture(string name, InMemoryTunnelControl control, UapiServer server)
    {
        Name = name;
        Control = control;
        Server = server;
    }

    public string Name { get; }

    public InMemoryTunnelControl Control { get; }

    public UapiServer Server { get; }

    public string SocketPath => Server.SocketPath;

    public static string UniqueName() => "fzt" + Guid.NewGuid().ToString("N")[..10];

    public static UapiServerFixture Start(Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        string name = UniqueName();
        var control = new InMemoryTunnelControl();
        var server = UapiServer.Start(UapiSocketPath.For(name), control, logger ?? NullLogger.Instance);
        return new UapiServerFixture(name, control, server);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        File.Delete(SocketPath);
    }
}
