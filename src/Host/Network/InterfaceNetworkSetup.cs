using System.Globalization;
using System.Text.RegularExpressions;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>
/// Service mode's share of wg-quick(8): the interface's addresses, routes for the peers' allowed
/// IPs, and for a gateway, IP forwarding and an nftables masquerade table of its own. Addresses and
/// routes in the main table disappear with the TUN device; <see cref="TearDownAsync"/> removes the
/// routes put into another table, the policy rules and the nftables table and restores the sysctl
/// switches it changed, so a stopped service leaves nothing behind.
/// <para>
/// Routes follow wg-quick's add_route and its <c>Table</c> key: <c>off</c> adds none; a table
/// (<c>main</c>, a number or a name) gets every allowed IP, a /0 too, with
/// <c>ip route add PREFIX dev IF table T</c> and no policy rules; <c>auto</c> (the default) puts
/// them in the main table, except a default route (an allowed IP of length 0), which is wg-quick's
/// add_default: the tunnel's own UDP datagrams must not be routed into the tunnel, so the socket gets
/// an fwmark (FwMark, or the first free table from 51820 as wg-quick picks) and the default route
/// goes into a routing table of that number, used by every packet without the mark
/// (<c>ip rule add not fwmark T table T</c>); the main table is still consulted first for everything
/// but its default route (<c>ip rule add table main suppress_prefixlength 0</c>), so local and more
/// specific routes win.
/// </para>
/// <para>
/// What outlives the process (policy rules, the nftables table, sysctl switches) is written to a
/// <see cref="NetworkSetupStateFile"/> before it is changed. A start that finds the file of an
/// instance that did not stop cleanly first removes that instance's rules and table and keeps its
/// recorded sysctl values as the originals to restore; a rule that is already there is not added
/// twice, and the nftables table is replaced in one atomic nft transaction.
/// </para>
/// </summary>
public sealed partial class InterfaceNetworkSetup(string interfaceName, ICommandRunner runner, ILogger logger, ITunnelControl? control = null, string? stateDirectory = null)
{
    private static readonly string[] ForwardingKeys = ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"];

    /// <summary>wg-quick's first policy routing table (and fwmark) for default routes.</summary>
    public const uint FirstDefaultRouteTable = 51820;

    /// <summary>wg-quick sets it so that replies to marked packets pass the reverse-path filter.</summary>
    private const string SourceValidMarkKey = "net.ipv4.conf.all.src_valid_mark";

    private readonly NetworkSetupState _state = new();
    private bool _stateWriteFailed;

    /// <summary>True once this instance read or wrote the state file: only then does teardown delete it.</summary>
    private bool _ownsStateFile;

    /// <summary>The policy routing table (and fwmark) of the default routes; null without one.</summary>
    public uint? DefaultRouteTable { get; private set; }

    /// <summary>
    /// The nftables table a gateway adds (inet family: one table for IPv4 and IPv6). nft's names
    /// take letters, digits, '_', '-', '.' and '/' only, and no quoting: any other character of the
    /// interface name (wg-quick allows '=' and '+') is written as '_' and its hex code, so that
    /// "wg+1" and "wg=1" get tables of their own ('_' stays as it is: the names of existing tables,
    /// which a restart after a kill must find, do not change).
    /// </summary>
    public string TableName { get; } = "firezone-tunnel-" + NftName(interfaceName);

    /// <summary>Where the changes that outlive the process are recorded (see the class remarks).</summary>
    public NetworkSetupStateFile StateFile { get; } = NetworkSetupStateFile.For(interfaceName, stateDirectory);

    public async Task ApplyAsync(TunnelConfig config, CancellationToken cancellationToken)
    {
        await RemoveLeftoversAsync(cancellationToken).ConfigureAwait(false);
        var addresses = config.Interface.Addresses;
        for (int i = 0; i < addresses.Count; i++)
        {
            var address = addresses[i];
            try
            {
                await IpAsync(cancellationToken, address.IsIPv4 ? "-4" : "-6", "address", "add", address.ToString(), "dev", interfaceName).ConfigureAwait(false);
            }
            catch (StartupException e) when (i < config.Interface.AddressLines.Count)
            {
                // ip's answer alone ("Error: ipv6: IPv6 is disabled on this device.", for an IPv6
                // address where IPv6 is off) does not say which line of the file to change.
                throw new StartupException($"{config.SourcePath}:{config.Interface.AddressLines[i]}: Address: {e.Message}", e);
            }
        }
        if (config.Interface.Mtu is null)
        {
            int mtu = await WgQuickMtuAsync(config, cancellationToken).ConfigureAwait(false);
            await IpAsync(cancellationToken, "link", "set", "dev", interfaceName, "mtu", mtu.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
            logger.LogInformation("MTU of {Interface} set to {Mtu}, as wg-quick sets it without an MTU key (the largest MTU on the way to the peers' endpoints, or of the default route, less 80)", interfaceName, mtu);
        }
        await IpAsync(cancellationToken, "link", "set", "dev", interfaceName, "up").ConfigureAwait(false);
        await SetDnsAsync(config, cancellationToken).ConfigureAwait(false);
        await AddRoutesAsync(config, cancellationToken).ConfigureAwait(false);
        if (config.Interface.Role == HostRole.Gateway)
        {
            await EnableGatewayAsync(cancellationToken).ConfigureAwait(false);
        }
    }

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
            string hint = e.Message.StartsWith("cannot run resolvconf", StringComparison.Ordinal)
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

    /// <summary>
    /// wg-quick's set_mtu_up without an MTU key: the largest MTU of the routes to the peers'
    /// endpoints (the route's own <c>mtu</c>, else its device's), else of the default route's
    /// device, else 1500, less 80 (the largest IPv6 and WireGuard overhead). A fixed 1420 sent
    /// datagrams too large for a path below 1500 (1460 in Google Cloud, 1492 over PPPoE), where
    /// wg-quick's interface fits, and wasted a jumbo-frame path. Looked up before the routes for the
    /// allowed IPs exist, as wg-quick does; an endpoint with a scope (<c>fe80::1%eth0</c>) is
    /// skipped, as wg-quick's pattern skips it.
    /// </summary>
    private async Task<int> WgQuickMtuAsync(TunnelConfig config, CancellationToken cancellationToken)
    {
        int largest = 0;
        foreach (var peer in config.Peers)
        {
            if (peer.Endpoint.IsNone || peer.Endpoint.ScopeId != 0)
            {
                continue;
            }
            string route = await QuietIpAsync(cancellationToken, "route", "get", peer.Endpoint.ToIPEndPoint().Address.ToString()).ConfigureAwait(false);
            largest = Math.Max(largest, await RouteMtuAsync(route, cancellationToken).ConfigureAwait(false));
        }
        if (largest == 0)
        {
            string route = await QuietIpAsync(cancellationToken, "route", "show", "default").ConfigureAwait(false);
            largest = await RouteMtuAsync(route.Split('\n')[0], cancellationToken).ConfigureAwait(false);
        }
        return (largest > 0 ? largest : 1500) - 80;
    }

    /// <summary>wg-quick's test: <c>mtu N</c> in the route, else the <c>mtu</c> of its <c>dev</c>; 0 when neither.</summary>
    private async Task<int> RouteMtuAsync(string route, CancellationToken cancellationToken)
    {
        if (MtuPattern().Match(route) is { Success: true } own)
        {
            return int.Parse(own.Groups[1].Value, CultureInfo.InvariantCulture);
        }
        if (DevicePattern().Match(route) is not { Success: true } device)
        {
            return 0;
        }
        string link = await QuietIpAsync(cancellationToken, "link", "show", "dev", device.Groups[1].Value).ConfigureAwait(false);
        return MtuPattern().Match(link) is { Success: true } mtu ? int.Parse(mtu.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    /// <summary>ip(8)'s output, or empty when it fails (no route to the endpoint), as wg-quick's <c>|| true</c>.</summary>
    private async Task<string> QuietIpAsync(CancellationToken cancellationToken, params string[] arguments)
    {
        try
        {
            return await IpAsync(cancellationToken, arguments).ConfigureAwait(false);
        }
        catch (StartupException e)
        {
            logger.LogDebug("ip {Arguments}: {Problem}", string.Join(' ', arguments), e.Message);
            return "";
        }
    }

    [GeneratedRegex(@"mtu ([0-9]{1,9})")]
    private static partial Regex MtuPattern();

    [GeneratedRegex(@"dev ([^ \n]+)")]
    private static partial Regex DevicePattern();

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
        foreach (var prefix in config.Peers.SelectMany(p => p.AllowedIps).OrderByDescending(p => p.Length))
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
                    await AddRouteAsync(prefix, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (StartupException e) when (config.AllowedIpLines.TryGetValue(prefix, out int line))
            {
                // Rule 11: the file and line of the allowed IP whose route ip refused, not only ip's answer.
                throw new StartupException($"{config.SourcePath}:{line}: AllowedIPs {prefix}: {e.Message}", e);
            }
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

    private async Task AddRouteAsync(IpPrefix prefix, CancellationToken cancellationToken)
    {
        string family = prefix.IsIPv4 ? "-4" : "-6";
        // wg-quick's add_route: a route on the device that covers the prefix already (the connected
        // subnet of an Address, an earlier and shorter AllowedIPs) is left as it is, so the kernel's
        // own route, with its source address, stays.
        string covering = await IpAsync(cancellationToken, family, "route", "show", "dev", interfaceName, "match", prefix.ToString()).ConfigureAwait(false);
        if (!string.IsNullOrWhiteSpace(covering))
        {
            return;
        }
        // "replace", not "add": a route for the prefix elsewhere (another device) moves to the tunnel.
        await IpAsync(cancellationToken, family, "route", "replace", prefix.ToString(), "dev", interfaceName).ConfigureAwait(false);
    }

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

    /// <summary>
    /// Sets a sysctl switch to 1. Its value before is recorded (in the state file first) for
    /// <see cref="TearDownAsync"/>, unless an instance that died already recorded the original.
    /// </summary>
    private async Task SetSysctlAsync(string key, CancellationToken cancellationToken)
    {
        string current = (await runner.RunAsync("sysctl", ["-n", key], null, cancellationToken).ConfigureAwait(false)).Trim();
        if (current == "1")
        {
            return;
        }
        if (_state.Sysctl.TryAdd(key, current))
        {
            SaveState();
        }
        await runner.RunAsync("sysctl", ["-q", "-w", key + "=1"], null, cancellationToken).ConfigureAwait(false);
    }

    private async Task EnableGatewayAsync(CancellationToken cancellationToken)
    {
        foreach (var key in ForwardingKeys)
        {
            await SetSysctlAsync(key, cancellationToken).ConfigureAwait(false);
        }
        // Traffic from the tunnel leaving by any other interface takes that interface's address,
        // as a Firezone Gateway does toward its resources. "add" then "delete" first: a table a
        // killed instance left is replaced, not merged into, in the same atomic transaction.
        string script = $$"""
            add table inet {{TableName}}
            delete table inet {{TableName}}
            table inet {{TableName}} {
              chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                iifname "{{interfaceName}}" oifname != "{{interfaceName}}" masquerade
              }
            }

            """;
        if (!_state.NftablesTable)
        {
            _state.NftablesTable = true;
            SaveState();
        }
        await runner.RunAsync("nft", ["-f", "-"], script, cancellationToken).ConfigureAwait(false);
        logger.LogInformation("Gateway: forwarding on, nftables table {Table} masquerades traffic from {Interface}", TableName, interfaceName);
    }

    /// <summary>
    /// The state file of an instance that did not stop cleanly: its policy rules, table routes and
    /// nftables table are removed now, and its recorded sysctl values stay the originals to restore.
    /// </summary>
    private async Task RemoveLeftoversAsync(CancellationToken cancellationToken)
    {
        NetworkSetupState? previous;
        try
        {
            previous = StateFile.Load();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Ignoring the state of an earlier instance: {Problem}", e.Message);
            return;
        }
        if (previous is null)
        {
            return;
        }
        _ownsStateFile = true;
        logger.LogWarning("{File} is left by an instance of {Interface} that did not stop cleanly: removing what it added", StateFile.Path, interfaceName);
        for (int i = previous.Undo.Count - 1; i >= 0; i--)
        {
            await RunQuietlyAsync("ip", previous.Undo[i], cancellationToken).ConfigureAwait(false);
        }
        if (previous.NftablesTable)
        {
            await RunQuietlyAsync("nft", ["delete", "table", "inet", TableName], cancellationToken).ConfigureAwait(false);
        }
        if (previous.Resolvconf is { } record && !await TryRemoveDnsRecordAsync(record, cancellationToken).ConfigureAwait(false))
        {
            _state.Resolvconf = record; // kept for this instance's stop to try again
        }
        foreach (var (key, value) in previous.Sysctl)
        {
            _state.Sysctl[key] = value;
        }
        SaveState();
    }

    /// <summary>A leftover that is gone already (its device went with the process) is not an error.</summary>
    private async Task RunQuietlyAsync(string file, string[] arguments, CancellationToken cancellationToken)
    {
        try
        {
            await runner.RunAsync(file, arguments, null, cancellationToken).ConfigureAwait(false);
        }
        catch (StartupException e)
        {
            logger.LogDebug("Leftover already gone: {Problem}", e.Message);
        }
    }

    /// <summary>Records the undo, then adds; a failed add is not undone on teardown.</summary>
    private async Task AddUndoableAsync(string[] add, string[] undo, CancellationToken cancellationToken)
    {
        RecordUndo(undo);
        try
        {
            await runner.RunAsync("ip", add, null, cancellationToken).ConfigureAwait(false);
        }
        catch (StartupException)
        {
            _state.Undo.RemoveAt(_state.Undo.Count - 1);
            SaveState();
            throw;
        }
    }

    private void RecordUndo(string[] undo)
    {
        _state.Undo.Add(undo);
        SaveState();
    }

    private void SaveState()
    {
        try
        {
            StateFile.Save(_state);
            _ownsStateFile = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not fatal: only a later start after an unclean exit needs it.
            if (!_stateWriteFailed)
            {
                logger.LogWarning("Cannot record the network setup in {File} ({Problem}): after an unclean exit a restart cannot restore the forwarding switches", StateFile.Path, e.Message);
                _stateWriteFailed = true;
            }
        }
    }

    /// <summary>Undoes what the TUN device's removal does not: table routes, policy rules, the nftables table and the sysctl switches.</summary>
    public async Task TearDownAsync(CancellationToken cancellationToken)
    {
        // wg-quick's unset_dns, first (as its del_if does), so that no lookup goes to a server that
        // is no longer routed. A record that cannot be removed stays recorded for the next start.
        if (_state.Resolvconf is { } dnsRecord && await TryRemoveDnsRecordAsync(dnsRecord, cancellationToken).ConfigureAwait(false))
        {
            _state.Resolvconf = null;
        }
        // Newest first, like a stack of what was added.
        for (int i = _state.Undo.Count - 1; i >= 0; i--)
        {
            try
            {
                await runner.RunAsync("ip", _state.Undo[i], null, cancellationToken).ConfigureAwait(false);
            }
            catch (StartupException e) when (IsAlreadyUndone(e.Message))
            {
                // `wg-quick down` (or `ip link delete`) on a service's interface: the kernel took the
                // routes with the link and wg-quick deleted the rules. Nothing failed, so no Warning
                // (log alerts would fire on every such stop).
                logger.LogInformation("Routing setting already removed: {Setting}", e.Message);
            }
            catch (StartupException e)
            {
                logger.LogWarning("Could not undo a routing setting: {Problem}", e.Message);
            }
        }
        _state.Undo.Clear();
        if (DefaultRouteTable is not null)
        {
            control?.RequireFwmark(null);
        }
        DefaultRouteTable = null;
        if (_state.NftablesTable)
        {
            try
            {
                await runner.RunAsync("nft", ["delete", "table", "inet", TableName], null, cancellationToken).ConfigureAwait(false);
            }
            catch (StartupException e)
            {
                logger.LogWarning("Could not remove nftables table {Table}: {Problem}", TableName, e.Message);
            }
            _state.NftablesTable = false;
        }
        foreach (var (key, value) in _state.Sysctl.ToArray())
        {
            try
            {
                await runner.RunAsync("sysctl", ["-q", "-w", key + "=" + value], null, cancellationToken).ConfigureAwait(false);
                _state.Sysctl.Remove(key);
            }
            catch (StartupException e)
            {
                logger.LogWarning("Could not restore {Key}: {Problem}", key, e.Message);
            }
        }
        if (!_ownsStateFile)
        {
            return;
        }
        if (_state.Sysctl.Count == 0 && _state.Resolvconf is null)
        {
            _ownsStateFile = false;
            try
            {
                StateFile.Delete();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning("Could not remove {File}: {Problem}", StateFile.Path, e.Message);
            }
        }
        else
        {
            // The originals not restored stay recorded for the next start.
            SaveState();
        }
    }

    private static string NftName(string name)
    {
        var text = new System.Text.StringBuilder(name.Length);
        foreach (char c in name)
        {
            if (char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')
            {
                text.Append(c);
            }
            else
            {
                text.Append('_').Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            }
        }
        return text.ToString();
    }

    /// <summary>
    /// ip(8)'s answers (LC_ALL=C, see ProcessCommandRunner) when what an undo deletes is gone:
    /// the device of a route no longer exists, a route (ESRCH) or a rule (ENOENT) is not there.
    /// </summary>
    internal static bool IsAlreadyUndone(string problem) =>
        problem.Contains("Cannot find device", StringComparison.Ordinal)
        || problem.EndsWith("RTNETLINK answers: No such process", StringComparison.Ordinal)
        || problem.EndsWith("RTNETLINK answers: No such file or directory", StringComparison.Ordinal);

    private Task<string> IpAsync(CancellationToken cancellationToken, params string[] arguments) =>
        runner.RunAsync("ip", arguments, null, cancellationToken);
}
