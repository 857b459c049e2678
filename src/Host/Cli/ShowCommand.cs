using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Cli;

/// <summary>
/// <c>firezone-tunnel show [INTERFACE | all]</c>: one interface, or, as <c>wg show</c> without an
/// interface or with <c>all</c>, every interface with a UAPI socket in /var/run/wireguard, one
/// after the other with a blank line between them.
/// </summary>
internal static class ShowCommand
{
    public const string All = "all";

    public static async Task<int> RunAsync(string? name, string directory, CancellationToken token)
    {
        if (name is null or All)
        {
            return await ShowAllAsync(directory, token).ConfigureAwait(false);
        }
        if (RunningInterface.FindSocket(name, directory, out int exitCode) is not { } socket)
        {
            return exitCode;
        }
        var shown = await ShowOneAsync(name, socket, token).ConfigureAwait(false);
        if (shown.Problem is not null)
        {
            Console.Error.WriteLine(shown.Problem);
            return 1;
        }
        Console.Out.Write(shown.Text);
        return 0;
    }

    /// <summary>
    /// Every socket in the directory, by name. A socket nobody listens on (left by a killed daemon)
    /// is no interface and is passed over, as wg passes over it; an interface another daemon serves
    /// (wireguard-go does not answer fz_get) is named on stderr with the command that shows it. Exit
    /// code 1 only when an interface could not be read for another reason.
    /// </summary>
    private static async Task<int> ShowAllAsync(string directory, CancellationToken token)
    {
        var names = new List<string>();
        if (Directory.Exists(directory))
        {
            foreach (string path in Directory.EnumerateFiles(directory, "*.sock"))
            {
                string name = Path.GetFileNameWithoutExtension(path);
                if (UapiSocketPath.IsValidInterfaceName(name))
                {
                    names.Add(name);
                }
            }
        }
        names.Sort(StringComparer.Ordinal);
        int exitCode = 0;
        bool first = true;
        foreach (string name in names)
        {
            var shown = await ShowOneAsync(name, UapiSocketPath.For(name, directory), token).ConfigureAwait(false);
            if (shown.Outcome == Outcome.Stale)
            {
                continue;
            }
            if (shown.Problem is not null)
            {
                Console.Error.WriteLine(shown.Problem);
                exitCode = shown.Outcome == Outcome.Foreign ? exitCode : 1;
                continue;
            }
            Console.Out.Write(first ? shown.Text : "\n" + shown.Text);
            first = false;
        }
        return exitCode;
    }

    private enum Outcome { Shown, Stale, Foreign, Failed }

    private readonly record struct Shown(Outcome Outcome, string? Text, string? Problem);

    private static async Task<Shown> ShowOneAsync(string name, string socket, CancellationToken token)
    {
        try
        {
            var status = await UapiClient.GetAsync(socket, token).ConfigureAwait(false);
            return new Shown(Outcome.Shown, ShowFormatter.Format(name, status, DateTimeOffset.UtcNow), null);
        }
        catch (UapiException e) when (e.NoReply)
        {
            // wireguard-go (or another UAPI daemon) closes the connection on an operation it
            // does not know, fz_get included: say which tool shows its interface.
            return new Shown(Outcome.Foreign, null, $"firezone-tunnel: {name}: its daemon does not answer fz_get (not firezone-tunnel; wireguard-go?): use wg show {name}");
        }
        catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused)
        {
            return new Shown(Outcome.Stale, null, RunningInterface.LeftBehind(name, socket, e.Message));
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or UapiException)
        {
            return new Shown(Outcome.Failed, null, $"firezone-tunnel: {socket}: {e.Message}");
        }
    }
}
