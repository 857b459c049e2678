using System.Net;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Daemon;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>
/// Writes the configuration file of a service-mode interface from its state as it is now, as
/// wg-quick's save_config does (<c>wg-quick save</c>, and <c>wg-quick down</c> with <c>SaveConfig =
/// true</c>): the text is <see cref="SavedConfigText"/>, with the interface's addresses read from
/// the kernel (<c>ip address add</c> included), the link's MTU and the tunnel's peers (<c>wg set</c>
/// changes, endpoints learned by roaming), and the [Interface] settings (DNS, MTU, Table, SaveConfig,
/// hooks, directives) of the file as it reads at that moment, as wg-quick reads it again. As in
/// wg-quick the file is written to <c>FILE.tmp</c> with mode 0600, synced and renamed over the file
/// (the target of a symbolic link), one save at a time. Unlike wg-quick, the link-local IPv6 address
/// the kernel gives the TUN device is not saved (wg-quick saves it from a userspace interface, and
/// each start then adds another). Used by <see cref="SaveConfigHostedService"/> on stop and by the
/// UAPI's <c>fz_save=1</c> (<c>firezone-tunnel save</c>).
/// </summary>
public sealed class ConfigSaver(DaemonOptions options, ITunnelControl control, ICommandRunner runner, ILogger<ConfigSaver> logger)
{
    /// <summary>Bound of a whole save (one ip(8) call, the tunnel's status, one small file).</summary>
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(5);

    /// <summary>The file saved to.</summary>
    public string FilePath => options.Config!.SourcePath;

    /// <summary>Whether the file said <c>SaveConfig = true</c> when the daemon started.</summary>
    public bool SaveConfigAtStart => options.Config!.Interface.SaveConfig;

    /// <summary>One save at a time: <c>firezone-tunnel save</c> and the stop's share FILE.tmp.</summary>
    private readonly SemaphoreSlim _saving = new(1, 1);

    /// <summary>
    /// <c>wg-quick save</c> (<c>firezone-tunnel save</c>): saves now; the path written.
    /// <see cref="ConfigException"/> when the file no longer reads, <see cref="IOException"/>,
    /// <see cref="UnauthorizedAccessException"/>, <see cref="StartupException"/> (ip) or
    /// <see cref="TunnelControlException"/> when it cannot save.
    /// </summary>
    public Task<string> SaveAsync(CancellationToken cancellationToken) =>
        SaveAsync(ReadFile(), "Saved {Interface}'s configuration ({PeerCount} peer(s)) to {ConfigFile} (firezone-tunnel save)", cancellationToken);

    /// <summary>
    /// <c>wg-quick down</c>'s save: only when the file says <c>SaveConfig = true</c>, as it reads now;
    /// the path written, or null when it does not say so, or no longer reads (logged at Error when it
    /// said so at the start: wg-quick down's save would run, but on what?).
    /// </summary>
    public async Task<string?> SaveOnStopAsync(CancellationToken cancellationToken)
    {
        TunnelConfig config;
        try
        {
            config = ReadFile();
        }
        catch (ConfigException e)
        {
            if (SaveConfigAtStart)
            {
                logger.LogError("SaveConfig: {ConfigFile} not saved: it no longer reads ({Problem}); the file is left as it is", FilePath, e.Message);
            }
            return null;
        }
        if (!config.Interface.SaveConfig)
        {
            if (SaveConfigAtStart)
            {
                logger.LogInformation("SaveConfig: {ConfigFile} says SaveConfig = false now: not saved", config.SourcePath);
            }
            return null;
        }
        return await SaveAsync(config, "SaveConfig: saved {Interface}'s configuration ({PeerCount} peer(s)) to {ConfigFile}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The file as it reads now: wg-quick save and down read it again, so a SaveConfig, hooks, Table
    /// or MTU edited since the start count (the peers come from the tunnel, so an Endpoint's host
    /// name is not looked up). A file that no longer reads is not overwritten with the settings it
    /// had at the start: <see cref="ConfigException"/>.
    /// </summary>
    private TunnelConfig ReadFile() => new WgQuickConfigParser(NoHostNameLookup.Instance).ParseFile(FilePath);

    private async Task<string> SaveAsync(TunnelConfig config, string logTemplate, CancellationToken cancellationToken)
    {
        await _saving.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await SaveLockedAsync(config, logTemplate, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _saving.Release();
        }
    }

    private async Task<string> SaveLockedAsync(TunnelConfig config, string logTemplate, CancellationToken cancellationToken)
    {
        string name = options.InterfaceName;
        IReadOnlyList<string> addresses;
        int mtu = config.Interface.Mtu ?? 0;
        string brief;
        try
        {
            brief = await runner.RunAsync("ip", ["-brief", "address", "show", "dev", name], null, cancellationToken).ConfigureAwait(false);
        }
        catch (StartupException e) when (InterfaceNetworkSetup.IsAlreadyUndone(e.Message) || e.Message.Contains("does not exist", StringComparison.Ordinal))
        {
            // Deleted before the stop (wg-quick down, ip link del): the peers are still known, the
            // addresses and MTU are the file's.
            logger.LogInformation("SaveConfig: {Interface} is already gone; saving the file's Address and MTU with the live peers", name);
            brief = "";
        }
        if (brief.Length == 0)
        {
            addresses = [.. config.Interface.Addresses.Select(a => a.ToString())];
        }
        else
        {
            addresses = Addresses(brief, name, config.Interface.Addresses, out var dropped);
            foreach (string address in dropped)
            {
                logger.LogWarning("SaveConfig: {Address} on {Interface} is not saved: an Address line cannot give a peer address", address, name);
            }
            if (config.Interface.Mtu is not null)
            {
                try
                {
                    mtu = Native.NetworkInterfaceControl.GetMtu(name);
                }
                catch (Native.TunDeviceException e)
                {
                    // Deleted in between: the file's MTU, as when it was gone before.
                    logger.LogDebug("SaveConfig: the MTU of {Interface} could not be read: {Problem}", name, e.Message);
                }
            }
        }
        var status = await control.GetStatusAsync(cancellationToken).ConfigureAwait(false);
        string text = SavedConfigText.Format(config, status, addresses, mtu);
        string target = Write(config.SourcePath, text);
        logger.LogInformation(logTemplate, name, status.Peers.Count, target);
        return target;
    }

    /// <summary>
    /// The addresses of <c>ip -brief address show dev NAME</c> ("NAME STATE ADDRESS..."), as wg-quick
    /// reads them, less the link-local IPv6 ones the file does not list (the kernel's own) and less
    /// those with a peer ("LOCAL peer REMOTE/LEN", which wg-quick would save as three broken lines),
    /// which go to <paramref name="dropped"/>.
    /// </summary>
    internal static IReadOnlyList<string> Addresses(string brief, string name, IReadOnlyList<InterfaceAddress> configured, out IReadOnlyList<string> dropped)
    {
        var kept = new List<string>();
        var skipped = new List<string>();
        dropped = skipped;
        string[] fields = brief.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 2 || fields[0] != name)
        {
            return kept;
        }
        for (int i = 2; i < fields.Length; i++)
        {
            string field = fields[i];
            if (i + 2 < fields.Length && fields[i + 1] == "peer")
            {
                skipped.Add($"{field} peer {fields[i + 2]}");
                i += 2;
                continue;
            }
            int slash = field.IndexOf('/');
            if (slash > 0 && IPAddress.TryParse(field[..slash], out var ip) && ip.IsIPv6LinkLocal
                && !configured.Any(a => a.Address.Equals(ip)))
            {
                continue;
            }
            kept.Add(field);
        }
        return kept;
    }

    /// <summary>
    /// As wg-quick: umask 077, write FILE.tmp, sync it, rename it over FILE. A symbolic link is
    /// followed first (wg-quick works on <c>readlink -f FILE</c>), so the link stays and its target
    /// changes. The path written; <see cref="IOException"/> naming the file and the problem in plain
    /// words when it cannot (.NET's texts name FILE.tmp, as "Read-only file system : 'FILE.tmp'").
    /// </summary>
    private static string Write(string path, string text)
    {
        path = File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? System.IO.Path.GetFullPath(path);
        string temporary = path + ".tmp";
        try
        {
            File.Delete(temporary);
            try
            {
                using (var file = new FileStream(temporary, new FileStreamOptions
                {
                    Mode = FileMode.CreateNew,
                    Access = FileAccess.Write,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                }))
                {
                    file.Write(System.Text.Encoding.UTF8.GetBytes(text));
                    file.Flush(flushToDisk: true);
                }
                File.Move(temporary, path, overwrite: true);
            }
            catch
            {
                DeleteQuietly(temporary);
                throw;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{path}: cannot write the file: {WriteProblem(e, temporary)}", e);
        }
        return path;
    }

    /// <summary>Why FILE could not be written, in the words of the file read's errors (<see cref="WgQuickConfigParser.ParseFile"/>).</summary>
    private static string WriteProblem(Exception e, string temporary) => e switch
    {
        _ when Directory.Exists(temporary) => $"{temporary}, where it is written first, is a directory",
        DirectoryNotFoundException => $"no such directory {System.IO.Path.GetDirectoryName(temporary)}",
        UnauthorizedAccessException => "permission denied",
        // On Linux .NET keeps the errno as the HResult: strerror's text ("Read-only file system", "No space left on device").
        IOException { HResult: > 0 } io => LowerFirst(System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(io.HResult)),
        _ => e.Message,
    };

    private static string LowerFirst(string text) => text.Length > 1 && char.IsUpper(text[0]) && !char.IsUpper(text[1])
        ? char.ToLowerInvariant(text[0]) + text[1..]
        : text;

    /// <summary>Removes a FILE.tmp left by a failed write; a failure to remove it is not the one to report.</summary>
    private static void DeleteQuietly(string temporary)
    {
        try
        {
            File.Delete(temporary);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
