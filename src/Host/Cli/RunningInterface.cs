using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Cli;

/// <summary>The UAPI socket of a running interface named on the command line (show, save).</summary>
internal static class RunningInterface
{
    /// <summary>
    /// The socket of <paramref name="name"/> in <paramref name="directory"/>; null, with the reason on
    /// stderr and the exit code in <paramref name="exitCode"/>, when the name is an unknown option or not valid (2) or no
    /// daemon serves it (1).
    /// </summary>
    public static string? FindSocket(string name, string directory, out int exitCode)
    {
        exitCode = 0;
        if (name.StartsWith('-'))
        {
            // System.CommandLine hands an unknown option to the free INTERFACE argument, as the root
            // command's (CommandLine.IsUsableInterfaceName): a usage error, not a stopped interface.
            Console.Error.WriteLine($"firezone-tunnel: unknown option '{name}' (see --help)");
            exitCode = 2;
            return null;
        }
        if (!UapiSocketPath.IsValidInterfaceName(name))
        {
            Console.Error.WriteLine($"firezone-tunnel: '{name}' is not a valid interface name");
            exitCode = 2;
            return null;
        }
        string socket = UapiSocketPath.For(name, directory);
        if (!File.Exists(socket))
        {
            // connect(2) to a missing path says "Cannot assign requested address", which names neither.
            Console.Error.WriteLine($"firezone-tunnel: {name}: no such interface (is its daemon running?)");
            exitCode = 1;
            return null;
        }
        return socket;
    }

    /// <summary>
    /// The line for a socket file nobody listens on (connect: ECONNREFUSED): a daemon killed (SIGKILL,
    /// OOM, a crash) leaves it behind, and "Connection refused" alone read as a daemon refusing.
    /// </summary>
    public static string LeftBehind(string name, string socket, string reason) =>
        $"firezone-tunnel: {name}: no daemon serves it: its socket {socket} is left by one that did not stop cleanly ({reason})";
}
