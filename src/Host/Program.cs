using Firezone.Actors.Host.Cli;
using Firezone.Actors.Host.Daemon;
using Firezone.Actors.Host.Logging;
using Firezone.Actors.Host.Tunnel;

namespace Firezone.Actors.Host;

public static class Program
{
    public static Task<int> Main(string[] args)
    {
        // Under systemd every line on stderr is a failure: journald records it as an error only
        // with the "<3>" prefix (JournalErrorWriter).
        if (JournalStream.IsConnected(2))
        {
            Console.SetError(new JournalErrorWriter(Console.Error));
        }
        return CommandLine.InvokeAsync(CommandLine.Build(new ActorTunnelComposition()), args);
    }
}
