using System.Net;
using System.Text.RegularExpressions;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Daemon;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>
/// Service mode's <c>SaveConfig = true</c>, as wg-quick down runs save_config: on stop, after
/// PreDown and before the interface is taken down, the configuration file is rewritten with the
/// interface's state as it is then (<see cref="SavedConfigText"/>): peers added or changed with
/// <c>wg set</c>, endpoints learned by roaming, addresses added with <c>ip address add</c>. As in
/// wg-quick: nothing is saved after a failed start or a failed PreDown; the file is written to
/// <c>FILE.tmp</c> with mode 0600, synced and renamed over the file. Unlike wg-quick, a save that
/// fails is logged at Error and the stop goes on (wg-quick down would stop there and leave the
/// interface up); and the link-local IPv6 address the kernel gives the TUN device is not saved
/// (wg-quick saves it from a userspace interface, and each start then adds another).
/// Registered between the UAPI service and the PostUp/PreDown hooks (see TunnelDaemon), so the
/// tunnel still answers when it runs.
/// </summary>
public sealed partial class SaveConfigHostedService(
    DaemonOptions options, ITunnelControl control, ICommandRunner runner, IHostApplicationLifetime lifetime, ILogger<SaveConfigHostedService> logger,
    WgQuickHookRunner? hooks = null) : IHostedService
{
    /// <summary>Bound of the whole save (two ip(8) calls, the tunnel's status, one small file), so the stop goes on.</summary>
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(5);

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        var config = options.Config!;
        if (!lifetime.ApplicationStarted.IsCancellationRequested)
        {
            return; // a start that failed or was cut short: wg-quick up saves nothing either
        }
        if (hooks is { PreDownFailed: true })
        {
            logger.LogWarning("SaveConfig: {ConfigFile} not saved: a PreDown failed (wg-quick down stops there too)", config.SourcePath);
            return;
        }
        // Not the host's shutdown token (2 s from the stop), which a slow PreDown may have used up.
        using var limit = new CancellationTokenSource(Limit);
        try
        {
            await SaveAsync(config, limit.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or StartupException or TunnelControlException or OperationCanceledException)
        {
            string problem = e is OperationCanceledException ? $"did not finish within {Limit.TotalSeconds:0} s" : e.Message;
            logger.LogError("SaveConfig: {ConfigFile} not saved: {Problem}", config.SourcePath, problem);
        }
    }

    private async Task SaveAsync(TunnelConfig config, CancellationToken cancellationToken)
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
            addresses = Addresses(brief, name, config.Interface.Addresses);
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
        Write(config.SourcePath, text);
        logger.LogInformation("SaveConfig: saved {Interface}'s configuration ({PeerCount} peer(s)) to {ConfigFile}", name, status.Peers.Count, config.SourcePath);
    }

    /// <summary>
    /// The addresses of <c>ip -brief address show dev NAME</c> ("NAME STATE ADDRESS..."), as wg-quick
    /// reads them, less the link-local IPv6 ones the file does not list (the kernel's own).
    /// </summary>
    internal static IReadOnlyList<string> Addresses(string brief, string name, IReadOnlyList<InterfaceAddress> configured)
    {
        var kept = new List<string>();
        string[] fields = brief.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 2 || fields[0] != name)
        {
            return kept;
        }
        foreach (string field in fields.AsSpan(2))
        {
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

    /// <summary>As wg-quick: umask 077, write FILE.tmp, sync it, rename it over FILE.</summary>
    private static void Write(string path, string text)
    {
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
    }

    [GeneratedRegex(@"mtu ([0-9]{1,9})")]
    private static partial Regex MtuPattern();
}
