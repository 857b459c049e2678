using Firezone.Actors.Host.Cli;
using Firezone.Actors.Host.Daemon;
using Firezone.Actors.Host.Logging;
using Firezone.Actors.Host.Tunnel;

namespace Firezone.Actors.Host;

public static class Program
{
    public static Task<int> Main(string[] args)
    {
        // First: below it the runtime fails wherever it next needs a descriptor, with a stack trace
        // (256 for a daemon, 128 for a command that starts none).
        if (Native.OpenFileLimit.RefuseTooLow(args))
        {
            return Task.FromResult(CommandLine.ConfigMistakeExitCode);
        }
        // Before the daemon's threads start: two malloc arenas, or each traffic burst left the
        // resident memory a few MB higher for good (MallocArenas).
        Native.MallocArenas.Limit(2);
        // Under systemd a line on stderr is a failure unless it is marked as a notice: journald
        // records it as an error only with the "<3>" prefix (JournalErrorWriter).
        // --log-format json (a container whose runtime merges stdout and stderr): every stderr line
        // a JSON object too, also the command line's own errors, hence before the parse.
        if (LogFormats.StandardErrorIsJson(args, Environment.GetEnvironmentVariable(LogFormats.Variable)) && !DetachedChild.IsDetachedChild)
        {
            JsonErrorWriter.Install(journal: JournalStream.IsConnected(2));
        }
        else if (JournalStream.IsConnected(2))
        {
            JournalErrorWriter.Install();
        }
        return CommandLine.InvokeAsync(CommandLine.Build(new ActorTunnelComposition()), args);
    }
}
