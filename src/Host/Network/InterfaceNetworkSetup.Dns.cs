using Firezone.Actors.Host.Config;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>wg-quick's set_dns and unset_dns: the DNS key through resolvconf.</summary>
public sealed partial class InterfaceNetworkSetup
{
    /// <summary>
    /// wg-quick's set_dns: the servers as <c>nameserver</c> lines and the search domains as one
    /// <c>search</c> line, given to <c>resolvconf -a [PREFIX]INTERFACE -m 0 -x</c> (the prefix from
    /// /etc/resolvconf/interface-order, as wg-quick's resolvconf_iface_prefix finds it). Nothing
    /// without a server, as in wg-quick. Without resolvconf (the Debian packages resolvconf or
    /// openresolv, or systemd-resolved's) the start fails, as <c>wg-quick up</c> does.
    /// </summary>
    private async Task SetDnsAsync(TunnelConfig config, CancellationToken cancellationToken)
    {
        var device = config.Interface;
        if (device.Dns.Count == 0)
        {
            return;
        }
        var text = new System.Text.StringBuilder();
        foreach (string server in device.Dns)
        {
            text.Append("nameserver ").Append(server).Append('\n');
        }
        if (device.DnsSearch.Count > 0)
        {
            text.Append("search ").AppendJoin(' ', device.DnsSearch).Append('\n');
        }
        string record = ResolvconfPrefix() + interfaceName;
        _state.Resolvconf = record;
        SaveState();
        try
        {
            await runner.RunAsync("resolvconf", ["-a", record, "-m", "0", "-x"], text.ToString(), cancellationToken).ConfigureAwait(false);
        }
        catch (StartupException e)
        {
            // The record stays noted: resolvconf may have written it before failing (a subscriber
            // script, the time bound), and the teardown after the failed start removes it with -f.
            // Not when resolvconf could not even be started (not installed, ProcessCommandRunner's
            // "cannot run"): nothing was written, and a noted record would outlive the start in the
            // state file, to be "removed" with a Warning by every later start.
            bool notStarted = e.InnerException is System.ComponentModel.Win32Exception;
            if (notStarted)
            {
                _state.Resolvconf = null;
                SaveState();
            }
            string hint = notStarted
                ? "install resolvconf, openresolv or systemd-resolved, or take the DNS line out"
                : "resolvconf could not take the record";
            throw new StartupException($"{config.SourcePath}:{device.DnsLine}: DNS: {e.Message} (wg-quick up fails here too: {hint})", e);
        }
        logger.LogInformation("DNS of {Interface}: {Servers:l}{Search:l} (resolvconf record {Record})", interfaceName,
            string.Join(", ", device.Dns), device.DnsSearch.Count > 0 ? "; search " + string.Join(' ', device.DnsSearch) : "", record);
    }

    /// <summary>wg-quick's unset_dns (<c>resolvconf -d RECORD -f</c>); false, with a Warning, when it fails.</summary>
    private async Task<bool> TryRemoveDnsRecordAsync(string record, CancellationToken cancellationToken)
    {
        try
        {
            await runner.RunAsync("resolvconf", ["-d", record, "-f"], null, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (StartupException e)
        {
            logger.LogWarning("Could not remove the DNS record {Record}: {Problem}", record, e.Message);
            return false;
        }
    }

    /// <summary>wg-quick's resolvconf_iface_prefix: the first <c>NAME*</c> pattern of /etc/resolvconf/interface-order, as <c>NAME.</c>.</summary>
    private static string ResolvconfPrefix()
    {
        const string order = "/etc/resolvconf/interface-order";
        try
        {
            foreach (string line in File.ReadLines(order))
            {
                var match = System.Text.RegularExpressions.Regex.Match(line, "^([A-Za-z0-9-]+)\\*$");
                if (match.Success)
                {
                    return match.Groups[1].Value + ".";
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No such file: no prefix, as in wg-quick.
        }
        return "";
    }
}
