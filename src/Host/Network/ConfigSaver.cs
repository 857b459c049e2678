using System.Net;
using System.Text.RegularExpressions;
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
/// changes, endpoints learned by roaming). As in wg-quick the file is written to <c>FILE.tmp</c>
/// with mode 0600, synced and renamed over the file. Unlike wg-quick, the link-local IPv6 address
/// the kernel gives the TUN device is not saved (wg-quick saves it from a userspace interface, and
/// each start then adds another). Used by <see cref="SaveConfigHostedService"/> on stop and by the
/// UAPI's <c>fz_save=1</c> (<c>firezone-tunnel save</c>).
/// </summary>
public sealed partial class ConfigSaver(DaemonOptions options, ITunnelControl control, ICommandRunner runner, ILogger<ConfigSaver> logger)
{
    /// <summary>Bound of a whole save (two ip(8) calls, the tunnel's status, one small file).</summary>
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(5);

    /// <summary>The file saved to.</summary>
    public string FilePath => options.Config!.SourcePath;

    /// <summary>Whether the file said <c>SaveConfig = true</c> when the daemon started.</summary>
    public bool SaveConfigAtStart => options.Config!.Interface.SaveConfig;

    /// <summary>
    /// <c>wg-quick save</c>: saves now; the number of peers written. <see cref="IOException"/>,
    /// <see cref="UnauthorizedAccessException"/>, <see cref="StartupException"/> (ip) or
    /// <see cref="TunnelControlException"/> when it cannot.
    /// </summary>
    public Task<int> SaveAsync(CancellationToken cancellationToken) => SaveAsync(ReadFile(), cancellationToken);

    /// <summary>
    /// <c>wg-quick down</c>'s save: only when the file says <c>SaveConfig = true</c>, as it reads now;
    /// null when it does not.
    /// </summary>
    public async Task<int?> SaveOnStopAsync(CancellationToken cancellationToken)
    {
        var config = ReadFile();
        if (!config.Interface.SaveConfig)
        {
            if (options.Config!.Interface.SaveConfig)
            {
                logger.LogInformation("SaveConfig: {ConfigFile} says SaveConfig = false now: not saved", config.SourcePath);
            }
            return null;
        }
        return await SaveAsync(config, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The file as it reads now: wg-quick save and down read it again, so a SaveConfig, hooks, Table,
    /// DNS or MTU edited since the start count (the peers come from the tunnel, so an Endpoint's host
    /// name is not looked up). The file as it was at the start when it no longer reads.
    /// </summary>
    private TunnelConfig ReadFile()
    {
        var started = options.Config!;
        try
        {
            return new WgQuickConfigParser(NoLookup.Instance).ParseFile(started.SourcePath);
        }
        catch (ConfigException e)
        {
            if (started.Interface.SaveConfig)
            {
                logger.LogWarning("SaveConfig: {Problem}; saving with the file's settings as they were at the start", e.Message);
            }
            return started;
        }
    }

    private async Task<int> SaveAsync(TunnelConfig config, CancellationToken cancellationToken)
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
                string link = await runner.RunAsync("ip", ["link", "show", "dev", name], null, cancellationToken).ConfigureAwait(false);
                if (MtuPattern().Match(link) is { Success: true } found)
                {
                    mtu = int.Parse(found.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                }
            }
        }
        var status = await control.GetStatusAsync(cancellationToken).ConfigureAwait(false);
        string text = SavedConfigText.Format(config, status, addresses, mtu);
        string target = Write(config.SourcePath, text);
        logger.LogInformation("SaveConfig: saved {Interface}'s configuration ({PeerCount} peer(s)) to {ConfigFile}", name, status.Peers.Count, target);
        return status.Peers.Count;
    }

    /// <summary>Stands in for the resolver when the file is read again only for its [Interface] settings.</summary>
    private sealed class NoLookup : IHostNameResolver
    {
        public static readonly NoLookup Instance = new();

        public IReadOnlyList<IPAddress> Resolve(string host) => [IPAddress.Loopback];
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
    /// changes. The path written.
    /// </summary>
    private static string Write(string path, string text)
    {
        path = File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? System.IO.Path.GetFullPath(path);
        string temporary = path + ".tmp";
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
            File.Delete(temporary);
            throw;
        }
        return path;
    }

    [GeneratedRegex(@"mtu ([0-9]{1,9})")]
    private static partial Regex MtuPattern();
}
