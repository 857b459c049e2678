using System.Globalization;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Host.Config;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>wg-quick's add_route and add_default: routes for the allowed IPs by the Table key, the default route's table, fwmark and policy rules.</summary>
public sealed partial class InterfaceNetworkSetup
{
    /// <summary>wg-quick's add_route for every allowed IP, by the Table key (see the class remarks).</summary>
    private async Task AddRoutesAsync(TunnelConfig config, CancellationToken cancellationToken)
    {
        var table = config.Interface.Table;
        if (table.Mode == RouteTableMode.Off)
        {
            logger.LogInformation("Table = off: no routes for the allowed IPs of {Interface}", interfaceName);
            return;
        }
        bool defaultV4 = false, defaultV6 = false;
        // Most specific first, as wg-quick (sort -nr -k 2 -t /): a wider prefix added first would
        // cover a narrower one in AddRouteAsync, whose route through another device would then stay,
        // so which traffic leaves by that device would depend on the order of the peers in the file.
        var prefixes = config.Peers.SelectMany(p => p.AllowedIps).OrderByDescending(p => p.Length).ToList();
        // The device's routes, read once per family, stand for add_route's `ip route show dev IF
        // match PREFIX` per allowed IP (null: a line that does not read; then each prefix is asked).
        List<IpPrefix>? routesV4 = null, routesV6 = null;
        // The routes to add, when both lists read: one `ip -batch` after the loop, not an ip process each.
        List<IpPrefix>? pending = null;
        if (table.Mode != RouteTableMode.Named)
        {
            // A family without allowed IPs is not asked (ip -6 fails on a kernel booted without IPv6).
            bool anyV4 = prefixes.Exists(p => p.IsIPv4), anyV6 = prefixes.Exists(p => !p.IsIPv4);
            routesV4 = anyV4 ? await DeviceRoutesAsync(v4: true, cancellationToken).ConfigureAwait(false) : [];
            routesV6 = anyV6 ? await DeviceRoutesAsync(v4: false, cancellationToken).ConfigureAwait(false) : [];
            pending = routesV4 is not null && routesV6 is not null && IsBatchWord(interfaceName) ? [] : null;
        }
        foreach (var prefix in prefixes)
        {
            try
            {
                if (table.Mode == RouteTableMode.Named)
                {
                    await AddTableRouteAsync(prefix, table.Name, cancellationToken).ConfigureAwait(false);
                }
                else if (prefix.Length == 0)
                {
                    defaultV4 |= prefix.IsIPv4;
                    defaultV6 |= !prefix.IsIPv4;
                }
                else
                {
                    await AddRouteAsync(prefix, prefix.IsIPv4 ? routesV4 : routesV6, pending, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (StartupException e) when (config.AllowedIpLines.TryGetValue(prefix, out int line))
            {
                throw RouteRefused(config, prefix, line, e);
            }
        }
        if (pending is { Count: > 0 })
        {
            await ReplaceRoutesAsync(config, pending, cancellationToken).ConfigureAwait(false);
        }
        if (table.Mode == RouteTableMode.Named)
        {
            logger.LogInformation("Routes of {Interface} go into routing table {Table} (no policy rules)", interfaceName, table.Name);
        }
        if (defaultV4 || defaultV6)
        {
            await AddDefaultRoutesAsync(config, defaultV4, defaultV6, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Rule 11: the file and line of the allowed IP whose route ip refused, not only ip's answer.</summary>
    private static StartupException RouteRefused(TunnelConfig config, IpPrefix prefix, int line, StartupException e) =>
        new($"{config.SourcePath}:{line}: AllowedIPs {prefix}: {e.Message}", e);

    /// <summary>
    /// <c>ip route replace PREFIX dev IF</c> for each of <paramref name="prefixes"/>, in order, as one
    /// <c>ip -batch</c>: a Gateway with 1,000 peers started 1,000 ip processes for them (1.7 s here).
    /// When the batch fails, each is replaced again one by one (replace is idempotent), so the one ip
    /// refuses is named with its file and line.
    /// </summary>
    private async Task ReplaceRoutesAsync(TunnelConfig config, List<IpPrefix> prefixes, CancellationToken cancellationToken)
    {
        if (prefixes.Count > 1)
        {
            var batch = new System.Text.StringBuilder();
            foreach (var prefix in prefixes)
            {
                batch.Append("route replace ").Append(prefix).Append(" dev ").Append(interfaceName).Append('\n');
            }
            try
            {
                await runner.RunAsync("ip", ["-batch", "-"], batch.ToString(), cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (StartupException)
            {
                // One by one below, for the error that names the allowed IP.
            }
        }
        foreach (var prefix in prefixes)
        {
            try
            {
                await ReplaceRouteAsync(prefix, cancellationToken).ConfigureAwait(false);
            }
            catch (StartupException e) when (config.AllowedIpLines.TryGetValue(prefix, out int line))
            {
                throw RouteRefused(config, prefix, line, e);
            }
        }
    }

    /// <summary>An interface name ip's batch reader takes as one word: wg-quick's characters (no quote, '#' or backslash).</summary>
    private static bool IsBatchWord(string name) => name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '=' or '+' or '.' or '-');

    /// <param name="deviceRoutes">The device's routes in the main table, kept up to date here; null: ask ip for each prefix.</param>
    /// <param name="pending">Where to put a route to add for <see cref="ReplaceRoutesAsync"/>; null: add it now.</param>
    private async Task AddRouteAsync(IpPrefix prefix, List<IpPrefix>? deviceRoutes, List<IpPrefix>? pending, CancellationToken cancellationToken)
    {
        string family = prefix.IsIPv4 ? "-4" : "-6";
        // wg-quick's add_route: a route on the device that covers the prefix already (the connected
        // subnet of an Address, an earlier and shorter AllowedIPs) is left as it is, so the kernel's
        // own route, with its source address, stays.
        bool covered = deviceRoutes is not null
            ? deviceRoutes.Exists(route => Covers(route, prefix))
            : !string.IsNullOrWhiteSpace(await IpAsync(cancellationToken, family, "route", "show", "dev", interfaceName, "match", prefix.ToString()).ConfigureAwait(false));
        if (covered)
        {
            return;
        }
        deviceRoutes?.Add(prefix);
        if (pending is not null)
        {
            pending.Add(prefix);
            return;
        }
        await ReplaceRouteAsync(prefix, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>"replace", not "add": a route for the prefix elsewhere (another device) moves to the tunnel.</summary>
    private Task<string> ReplaceRouteAsync(IpPrefix prefix, CancellationToken cancellationToken) =>
        IpAsync(cancellationToken, prefix.IsIPv4 ? "-4" : "-6", "route", "replace", prefix.ToString(), "dev", interfaceName);

    /// <summary>
    /// The destinations of the device's routes in the main table (<c>ip route show dev IF</c>), what
    /// add_route's <c>ip route show dev IF match PREFIX</c> looks through: read once instead of once
    /// per allowed IP (a Gateway with 1,000 peers started 1,000 more ip processes, about 1.6 s here).
    /// Null when ip fails or a line does not start with a destination, so that each prefix is asked
    /// as wg-quick asks.
    /// </summary>
    private async Task<List<IpPrefix>?> DeviceRoutesAsync(bool v4, CancellationToken cancellationToken)
    {
        string text;
        try
        {
            text = await IpAsync(cancellationToken, v4 ? "-4" : "-6", "route", "show", "dev", interfaceName).ConfigureAwait(false);
        }
        catch (StartupException)
        {
            return null; // each prefix is asked, and its own error named with its line
        }
        var routes = new List<IpPrefix>();
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string destination = line.Split(' ', 2)[0];
            if (destination == "default")
            {
                destination = v4 ? "0.0.0.0/0" : "::/0";
            }
            // A host route is printed without its length, which TryParse reads as one.
            if (!IpPrefix.TryParse(destination, out var route, out _) || route.IsIPv4 != v4)
            {
                return null;
            }
            routes.Add(route);
        }
        return routes;
    }

    /// <summary>Whether <paramref name="route"/> holds all of <paramref name="prefix"/> (ip's <c>match</c>).</summary>
    private static bool Covers(IpPrefix route, IpPrefix prefix) =>
        route.IsIPv4 == prefix.IsIPv4 && route.Length <= prefix.Length && route.Contains(prefix.Address.GetAddressBytes());

    /// <summary>wg-quick: <c>ip $proto route add "$1" dev "$INTERFACE" table "$TABLE"</c>.</summary>
    private async Task AddTableRouteAsync(IpPrefix prefix, string table, CancellationToken cancellationToken)
    {
        string family = prefix.IsIPv4 ? "-4" : "-6";
        string text = prefix.ToString();
        // Removed on teardown: the TUN device's removal would take it too, but only if the device goes first.
        await AddUndoableAsync(
            [family, "route", "add", text, "dev", interfaceName, "table", table],
            [family, "route", "delete", text, "dev", interfaceName, "table", table],
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>wg-quick's add_default, for each family that has a /0 (see the class remarks).</summary>
    private async Task AddDefaultRoutesAsync(TunnelConfig config, bool v4, bool v6, CancellationToken cancellationToken)
    {
        uint table;
        if (config.Interface.FwMark is uint mark and not 0)
        {
            table = mark;
        }
        else
        {
            if (control is null)
            {
                throw new StartupException($"{config.SourcePath}: a /0 AllowedIPs needs an fwmark on the tunnel's socket, and there is no tunnel to set it on");
            }
            table = await FreeTableAsync(cancellationToken).ConfigureAwait(false);
            await control.SetFwmarkAsync(table, cancellationToken).ConfigureAwait(false);
        }
        // Kept through a `systemctl reload` that sends fwmark=0 (see ITunnelControl.RequireFwmark).
        control?.RequireFwmark(table);
        DefaultRouteTable = table;
        string t = table.ToString(CultureInfo.InvariantCulture);
        if (v4)
        {
            await AddDefaultRouteAsync("-4", "0.0.0.0/0", table, cancellationToken).ConfigureAwait(false);
            await SetSysctlAsync(SourceValidMarkKey, cancellationToken).ConfigureAwait(false);
        }
        if (v6)
        {
            await AddDefaultRouteAsync("-6", "::/0", table, cancellationToken).ConfigureAwait(false);
        }
        await AddMarkTablesAsync(config, v4, v6, table, cancellationToken).ConfigureAwait(false);
        logger.LogInformation("Default route through {Interface}: table {Table}, fwmark {Table} on the tunnel's socket", interfaceName, t, t);
    }

    private async Task AddDefaultRouteAsync(string family, string prefix, uint tableNumber, CancellationToken cancellationToken)
    {
        string table = tableNumber.ToString(CultureInfo.InvariantCulture);
        await AddUndoableAsync(
            [family, "route", "add", prefix, "dev", interfaceName, "table", table],
            [family, "route", "delete", prefix, "dev", interfaceName, "table", table],
            cancellationToken).ConfigureAwait(false);
        // ip(8) shows the mark in hex and the table by its rt_tables name if it has one.
        string hexMark = "0x" + tableNumber.ToString("x", CultureInfo.InvariantCulture);
        await AddRuleOnceAsync(family, table, ["not", "fwmark", table, "table", table], $"not from all fwmark {hexMark} lookup ", cancellationToken).ConfigureAwait(false);
        await AddRuleOnceAsync(family, "main", ["table", "main", "suppress_prefixlength", "0"], "from all lookup main suppress_prefixlength 0", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Adds a policy rule unless <c>ip rule show table T</c> already lists it (left by an instance
    /// that was killed, or by another tunnel's add_default), so a restart never stacks copies. Either
    /// way teardown deletes it, as wg-quick's del_if deletes every copy.
    /// </summary>
    private async Task AddRuleOnceAsync(string family, string table, string[] rule, string shownAs, CancellationToken cancellationToken)
    {
        string[] undo = [family, "rule", "delete", .. rule];
        string shown = await IpAsync(cancellationToken, family, "rule", "show", "table", table).ConfigureAwait(false);
        if (ListsRule(shown, shownAs))
        {
            logger.LogInformation("Policy rule '{Rule}' ({Family}) is already there; not adding it again", string.Join(' ', rule), family);
            RecordUndo(undo);
            return;
        }
        await AddUndoableAsync([family, "rule", "add", .. rule], undo, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>True when a line of <c>ip rule show</c> ("32765:\tnot from all fwmark 0xca6c lookup 51820") starts with <paramref name="shownAs"/>.</summary>
    internal static bool ListsRule(string ipRuleShow, string shownAs)
    {
        foreach (var line in ipRuleShow.Split('\n'))
        {
            int colon = line.IndexOf(':');
            string rule = (colon < 0 ? line : line[(colon + 1)..]).Trim();
            if (rule.StartsWith(shownAs, StringComparison.Ordinal)
                && (shownAs.EndsWith(' ') || rule.Length == shownAs.Length || rule[shownAs.Length] == ' '))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The undo of <c>ip rule add table main suppress_prefixlength 0</c>, which every full tunnel in the namespace shares.</summary>
    private static bool IsSharedSuppressRuleUndo(string[] undo) =>
        undo is [_, "rule", "delete", "table", "main", "suppress_prefixlength", "0"];

    /// <summary>The tables of the <c>not fwmark T table T</c> rules this instance deletes at teardown.</summary>
    private HashSet<string> OwnMarkRuleTables() =>
        _state.Undo.Where(undo => undo is [_, "rule", "delete", "not", "fwmark", _, "table", _]).Select(undo => undo[7]).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// The table of another full tunnel's <c>not from all fwmark M lookup T</c> rule in
    /// <paramref name="family"/> (one of ours, or wg-quick's over the kernel's WireGuard), or null:
    /// while there is one, the rule and the switch that all full tunnels share stay. wg-quick's
    /// del_if deletes the shared rule whatever else runs (and never resets src_valid_mark), which
    /// sends every unmarked packet of the tunnel still running into its table, the LAN's too.
    /// </summary>
    private async Task<string?> OtherFullTunnelTableAsync(string family, HashSet<string> ownTables, CancellationToken cancellationToken)
    {
        const string markRule = "not from all fwmark ";
        const string lookup = " lookup ";
        string shown = await QuietIpAsync(cancellationToken, family, "rule", "show").ConfigureAwait(false);
        foreach (var line in shown.Split('\n'))
        {
            int colon = line.IndexOf(':');
            string rule = (colon < 0 ? line : line[(colon + 1)..]).Trim();
            int at = rule.IndexOf(lookup, StringComparison.Ordinal);
            if (rule.StartsWith(markRule, StringComparison.Ordinal) && at > 0
                && rule[(at + lookup.Length)..].Split(' ')[0] is { Length: > 0 } table && !ownTables.Contains(table))
            {
                return table;
            }
        }
        return null;
    }

    /// <summary>The first table from 51820 with no routes in either family (wg-quick's search).</summary>
    private async Task<uint> FreeTableAsync(CancellationToken cancellationToken)
    {
        for (uint table = FirstDefaultRouteTable; ; table++)
        {
            string t = table.ToString(CultureInfo.InvariantCulture);
            if (await TableIsEmptyAsync("-4", t, cancellationToken).ConfigureAwait(false)
                && await TableIsEmptyAsync("-6", t, cancellationToken).ConfigureAwait(false))
            {
                return table;
            }
        }
    }

    /// <summary>"FIB table does not exist" is an error from ip(8); wg-quick reads it (2>/dev/null) as empty too.</summary>
    private async Task<bool> TableIsEmptyAsync(string family, string table, CancellationToken cancellationToken)
    {
        try
        {
            return (await IpAsync(cancellationToken, family, "route", "show", "table", table).ConfigureAwait(false)).Trim().Length == 0;
        }
        catch (StartupException)
        {
            return true;
        }
    }
}
