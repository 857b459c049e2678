using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Cli;

/// <summary>
/// <c>firezone-tunnel save INTERFACE</c>, as <c>wg-quick save</c>: the daemon of a service-mode
/// interface rewrites its configuration file from the interface's state as it is now (the UAPI's
/// <c>fz_save=1</c>, see ConfigSaver). The daemon writes it, not this command: it knows the file, its
/// hooks and directives, and under the sample unit it is the one allowed to write /etc/wireguard.
/// </summary>
internal static class SaveCommand
{
    public static async Task<int> RunAsync(string name, string directory, CancellationToken token)
    {
        if (name.Contains('/', StringComparison.Ordinal))
        {
            // wg-quick save takes a file too (a name with a '/', or not a valid interface name);
            // the daemon saves to the file it was started from.
            string hint = Path.GetFileName(name) is { } file && file.EndsWith(".conf", StringComparison.Ordinal) ? file[..^5] : "wg0";
            Console.Error.WriteLine($"firezone-tunnel: save takes the interface, not a file (firezone-tunnel save {hint}): its daemon saves to the file it was started from");
            return 2;
        }
        if (RunningInterface.FindSocket(name, directory, out int exitCode) is not { } socket)
        {
            return exitCode;
        }
        try
        {
            string path = await UapiClient.SaveAsync(socket, token).ConfigureAwait(false);
            Console.Out.WriteLine($"Saved {name}'s configuration to {path}");
            return 0;
        }
        catch (Exception e) when (e is UapiException { NoReply: true } or System.Net.Sockets.SocketException or IOException && !File.Exists(socket))
        {
            // The socket went meanwhile: the daemon stopped, after or before it wrote the file.
            Console.Error.WriteLine($"firezone-tunnel: {name}: its daemon stopped before it answered; the file may or may not have been saved ({(e is UapiException ? "no reply" : e.Message)})");
            return 1;
        }
        catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused)
        {
            Console.Error.WriteLine(RunningInterface.LeftBehind(name, socket, e.Message) + ": not saved");
            return 1;
        }
        catch (UapiException e) when (e.NoReply)
        {
            Console.Error.WriteLine($"firezone-tunnel: {name}: its daemon does not answer fz_save (not firezone-tunnel; wireguard-go?): use wg-quick save {name}");
            return 1;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or UapiException)
        {
            Console.Error.WriteLine($"firezone-tunnel: {name}: not saved: {e.Message}");
            return 1;
        }
    }
}
