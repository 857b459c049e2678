using System.Globalization;
using Firezone.Actors.Host.Config;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>
/// wg-quick's nftables rules for a full tunnel (its add_default), a table per family with a /0:
/// the fwmark of the tunnel's own datagrams is kept in their connection's mark and given back to
/// the replies, so a reply from the Gateway is checked by the reverse-path filter against the
/// fwmark's table (where the Gateway is reached by the uplink) instead of the main one (where the
/// default route is the tunnel). Without them a host whose <c>rp_filter</c> is strict (1, as on
/// RHEL) dropped every datagram from the Gateway (TcpExtIPReversePathFilter), where wg-quick's
/// tunnel worked (the laptop review, 2026-11-29). Also wg-quick's rules against packets for the
/// tunnel's addresses that arrive by another interface from a non-local source.
/// </summary>
public sealed partial class InterfaceNetworkSetup
{
    // The script of each mark table this instance added, to add it again when another program removes it.
    private readonly Dictionary<string, string> _markScripts = new();

    /// <summary>The mark table of a family ("ip" or "ip6"); a gateway's is family inet, so the names do not meet.</summary>
    private string MarkTableScript(string family, uint table, IEnumerable<InterfaceAddress> addresses)
    {
        string mark = table.ToString(CultureInfo.InvariantCulture);
        string address = family == "ip" ? "ip" : "ip6";
        var script = new System.Text.StringBuilder();
        // "add" then "delete": a table a killed instance left is replaced in the same transaction.
        script.Append(CultureInfo.InvariantCulture, $"add table {family} {TableName}\ndelete table {family} {TableName}\ntable {family} {TableName} {{\n");
        script.Append("  chain preraw {\n    type filter hook prerouting priority raw; policy accept;\n");
        foreach (var own in addresses)
        {
            script.Append(CultureInfo.InvariantCulture, $"    iifname != \"{interfaceName}\" {address} daddr {own.Address} fib saddr type != local drop\n");
        }
        script.Append("  }\n");
        script.Append("  chain premangle {\n    type filter hook prerouting priority mangle; policy accept;\n    meta l4proto udp meta mark set ct mark\n  }\n");
        script.Append(CultureInfo.InvariantCulture, $"  chain postmangle {{\n    type filter hook postrouting priority mangle; policy accept;\n    meta l4proto udp mark {mark} ct mark set mark\n  }}\n");
        script.Append("}\n");
        return script.ToString();
    }

    /// <summary>
    /// Adds the mark table of each family with a /0. Recorded first (a start after an unclean exit
    /// removes it). Without nft, or when nft refuses, the tunnel still starts, with a Warning: the
    /// rules matter only where the reverse-path filter is strict, and a full tunnel without them is
    /// what this daemon set up before.
    /// </summary>
    private async Task AddMarkTablesAsync(TunnelConfig config, bool v4, bool v6, uint table, CancellationToken cancellationToken)
    {
        foreach (var (family, wanted) in new[] { ("ip", v4), ("ip6", v6) })
        {
            if (!wanted)
            {
                continue;
            }
            if (!_state.MarkTables.Contains(family))
            {
                _state.MarkTables.Add(family);
                SaveState();
            }
            string script = MarkTableScript(family, table, config.Interface.Addresses.Where(a => a.IsIPv4 == (family == "ip")));
            try
            {
                await runner.RunAsync("nft", ["-f", "-"], script, cancellationToken).ConfigureAwait(false);
                _markScripts[family] = script;
                logger.LogInformation("nftables table {Family} {Table}: replies to the tunnel's datagrams keep fwmark {Mark} (for the reverse-path filter), as wg-quick's", family, TableName, table);
            }
            catch (StartupException e)
            {
                _state.MarkTables.Remove(family);
                SaveState();
                logger.LogWarning("Could not add nftables table {Family} {Table} ({Problem}): where the reverse-path filter is strict (rp_filter=1) the Gateway's datagrams will be dropped; install nftables, or set net.ipv4.conf.all.rp_filter=2",
                    family, TableName, e.Message);
            }
        }
        if (_markScripts.Count > 0)
        {
            WatchTable();
        }
    }

    /// <summary>
    /// Deletes the mark tables <paramref name="families"/> names (at the stop, or a killed
    /// instance's at the start); returns the families whose table may still be there (nft failed
    /// otherwise than "gone"), to be tried again.
    /// </summary>
    private async Task<List<string>> DeleteMarkTablesAsync(IEnumerable<string> families, bool leftovers, CancellationToken cancellationToken)
    {
        var kept = new List<string>();
        foreach (var family in families.ToArray())
        {
            try
            {
                await runner.RunAsync("nft", ["delete", "table", family, TableName], null, cancellationToken).ConfigureAwait(false);
            }
            catch (StartupException e) when (e.Message.EndsWith("No such file or directory", StringComparison.Ordinal))
            {
                if (leftovers)
                {
                    logger.LogDebug("nftables table {Family} {Table} already gone: {Problem}", family, TableName, e.Message);
                }
                else
                {
                    // Removed under the running tunnel and not added back (the watch was off or failed).
                    logger.LogWarning(MarkTableGoneMessage, family, TableName);
                }
            }
            catch (StartupException e) when (e.NotInstalled)
            {
                // No nft now, so none added by this instance; a killed one's cannot be told apart.
                logger.LogDebug("No nftables table {Family} {Table} to remove: {Problem}", family, TableName, e.Message);
            }
            catch (StartupException e)
            {
                logger.LogWarning("Could not remove nftables table {Family} {Table}: {Problem}", family, TableName, e.Message);
                kept.Add(family);
            }
        }
        return kept;
    }

    /// <summary>The stop's Warning when another program removed a full tunnel's mark table while it ran.</summary>
    internal const string MarkTableGoneMessage =
        "nftables table {Family} {Table} was already gone at the stop: another program removed it while the tunnel ran (nft flush ruleset, as a reload of nftables.service runs it), and where the reverse-path filter is strict the Gateway's datagrams were dropped from then on";

    /// <summary>
    /// A mark table another program removed (see <see cref="WatchTable"/>) is added again, with a
    /// Warning: a strict reverse-path filter drops the Gateway's datagrams without it.
    /// </summary>
    private async Task RestoreMarkTablesAsync(HashSet<string> present, CancellationToken cancellationToken)
    {
        foreach (var (family, script) in _markScripts.ToArray())
        {
            if (present.Contains($"table {family} {TableName}"))
            {
                continue;
            }
            try
            {
                await runner.RunAsync("nft", ["-f", "-"], script, cancellationToken).ConfigureAwait(false);
                logger.LogWarning("nftables table {Family} {Table} was removed by another program (nft flush ruleset, as a reload of nftables.service runs it): added again, so the Gateway's datagrams pass a strict reverse-path filter again", family, TableName);
            }
            catch (StartupException e)
            {
                logger.LogWarning("nftables table {Family} {Table} was removed by another program and could not be added again: {Problem}; restart the interface", family, TableName, e.Message);
            }
        }
    }
}
