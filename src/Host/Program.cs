using Firezone.Actors.Host.Cli;
using Firezone.Actors.Host.Daemon;
using Firezone.Actors.Host.Tunnel;

namespace Firezone.Actors.Host;

public static class Program
{
    public static Task<int> Main(string[] args) =>
        CommandLine.InvokeAsync(CommandLine.Build(new ActorTunnelComposition()), args);
}
