using System.Globalization;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>
/// Service mode's share of wg-quick(8): the interface's addresses, routes for the peers' allowed
/// IPs, and for a gateway, IP forwarding and an nftables masquerade table of its own. Addresses and
/// routes disappear with the TUN device; <see cref="TearDownAsync"/> removes the nftables table and
/// the policy rules and restores the sysctl switches it changed, so a stopped service leaves
/// nothing behind.
/// <para>
/// A default route (an allowed IP of length 0) is wg-quick's add_default: the tunnel's own UDP
/// datagrams must not be routed into the tunnel, so the socket gets an fwmark (FwMark, or the first
/// free table from 51820 as wg-quick picks) and the default route goes into a routing table of that
/// number, used by every packet without the mark (<c>ip rule add not fwmark T table T</c>); the
/// main table is still consulted first for everything but its default route
/// (<c>ip rule add table main suppress_prefixlength 0</c>), so local and more specific routes win.
/// </para>
/// </summary>
public sealed class InterfaceNetworkSetup(string interfaceName, ICommandRunner runner, ILogger logger, ITunnelControl? control = null)
{
    private static readonly string[] ForwardingKeys = ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"];

    /// <summary>wg-quick's first policy routing table (and fwmark) for default routes.</summary>
    public const uint FirstDefaultRouteTable = 51820;

    /// <summary>wg-quick sets it so that replies to marked packets pass the reverse-path filter.</summary>
    private const string SourceValidMarkKey = "net.ipv4.conf.all.src_valid_mark";

    private readonly Dictionary<string, string> _previousSysctl = [];
    private readonly List<string[]> _undo = [];
    private bool _tableAdded;

    /// <summary>The policy routing table (and fwmark) of the default routes; null without one.</summary>
    public uint? DefaultRouteTable { get; private set; }

    /// <summary>The nftables table a gateway adds (inet family: one table for IPv4 and IPv6).</summary>
    public string TableName => "firezone-tunnel-" + interfaceName;

    public async Task ApplyAsync(TunnelConfig config, CancellationToken cancellationToken)
    {
        foreach (var address in config.Interface.Addresses)
        {
            await IpAsync(cancellationToken, address.IsIPv4 ? "-4" : "-6", "address", "add", address.ToString(), "dev", interfaceName).ConfigureAwait(false);
        }
        await IpAsync(cancellationToken, "link", "set", "dev", interfaceName, "up").ConfigureAwait(false);
        bool defaultV4 = false, defaultV6 = false;
        foreach (var peer in config.Peers)
        {
            foreach (var prefix in peer.AllowedIps)
            {
                if (prefix.Length == 0)
                {
                    defaultV4 |= prefix.IsIPv4;
                    defaultV6 |= !prefix.IsIPv4;
                    continue;
                }
                await AddRouteAsync(prefix, cancellationToken).ConfigureAwait(false);
            }
        }
        if (defaultV4 || defaultV6)
        {
            await AddDefaultRoutesAsync(config, defaultV4, defaultV6, cancellationToken).ConfigureAwait(false);
        }
        if (config.Interface.Role == HostRole.Gateway)
        {
            await EnableGatewayAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task AddRouteAsync(IpPrefix prefix, CancellationToken cancellationToken)
    {
        // "replace", not "add": a route the address assignment already created (the connected
        // subnet) is not an error.
        await IpAsync(cancellationToken, prefix.IsIPv4 ? "-4" : "-6", "route", "replace", prefix.ToString(), "dev", interfaceName).ConfigureAwait(false);
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
        DefaultRouteTable = table;
        string t = table.ToString(CultureInfo.InvariantCulture);
        if (v4)
        {
            await AddDefaultRouteAsync("-4", "0.0.0.0/0", t, cancellationToken).ConfigureAwait(false);
            await SetSysctlAsync(SourceValidMarkKey, cancellationToken).ConfigureAwait(false);
        }
        if (v6)
        {
            await AddDefaultRouteAsync("-6", "::/0", t, cancellationToken).ConfigureAwait(false);
        }
        logger.LogInformation("Default route through {Interface}: table {Table}, fwmark {Table} on the tunnel's socket", interfaceName, t, t);
    }

    private async Task AddDefaultRouteAsync(string family, string prefix, string table, CancellationToken cancellationToken)
    {
        await IpAsync(cancellationToken, family, "route", "add", prefix, "dev", interfaceName, "table", table).ConfigureAwait(false);
        _undo.Add([family, "route", "delete", prefix, "dev", interfaceName, "table", table]);
        await IpAsync(cancellationToken, family, "rule", "add", "not", "fwmark", table, "table", table).ConfigureAwait(false);
        _undo.Add([family, "rule", "delete", "not", "fwmark", table, "table", table]);
        await IpAsync(cancellationToken, family, "rule", "add", "table", "main", "suppress_prefixlength", "0").ConfigureAwait(false);
        _undo.Add([family, "rule", "delete", "table", "main", "suppress_prefixlength", "0"]);
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

    /// <summary>Sets a sysctl switch to 1, remembering its value for <see cref="TearDownAsync"/>.</summary>
    private async Task SetSysctlAsync(string key, CancellationToken cancellationToken)
    {
        string current = (await runner.RunAsync("sysctl", ["-n", key], null, cancellationToken).ConfigureAwait(false)).Trim();
        if (current != "1")
        {
            await runner.RunAsync("sysctl", ["-q", "-w", key + "=1"], null, cancellationToken).ConfigureAwait(false);
            _previousSysctl.TryAdd(key, current);
        }
    }

    private async Task EnableGatewayAsync(CancellationToken cancellationToken)
    {
        foreach (var key in ForwardingKeys)
        {
            await SetSysctlAsync(key, cancellationToken).ConfigureAwait(false);
        }
        // Traffic from the tunnel leaving by any other interface takes that interface's address,
        // as a Firezone Gateway does toward its resources.
        string script = $$"""
            table inet {{TableName}} {
              chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                iifname "{{interfaceName}}" oifname != "{{interfaceName}}" masquerade
              }
            }

            """;
        await runner.RunAsync("nft", ["-f", "-"], script, cancellationToken).ConfigureAwait(false);
        _tableAdded = true;
        logger.LogInformation("Gateway: forwarding on, nftables table {Table} masquerades traffic from {Interface}", TableName, interfaceName);
    }

    /// <summary>Undoes what the TUN device's removal does not: policy rules, the nftables table and the sysctl switches.</summary>
    public async Task TearDownAsync(CancellationToken cancellationToken)
    {
        // Newest first, like a stack of what was added.
        for (int i = _undo.Count - 1; i >= 0; i--)
        {
            try
            {
                await runner.RunAsync("ip", _undo[i], null, cancellationToken).ConfigureAwait(false);
            }
            catch (StartupException e)
            {
                logger.LogWarning("Could not undo a default-route setting: {Problem}", e.Message);
            }
        }
        _undo.Clear();
        DefaultRouteTable = null;
        if (_tableAdded)
        {
            try
            {
                await runner.RunAsync("nft", ["delete", "table", "inet", TableName], null, cancellationToken).ConfigureAwait(false);
            }
            catch (StartupException e)
            {
                logger.LogWarning("Could not remove nftables table {Table}: {Problem}", TableName, e.Message);
            }
            _tableAdded = false;
        }
        foreach (var (key, value) in _previousSysctl)
        {
            try
            {
                await runner.RunAsync("sysctl", ["-q", "-w", key + "=" + value], null, cancellationToken).ConfigureAwait(false);
            }
            catch (StartupException e)
            {
                logger.LogWarning("Could not restore {Key}: {Problem}", key, e.Message);
            }
        }
        _previousSysctl.Clear();
    }

    private Task<string> IpAsync(CancellationToken cancellationToken, params string[] arguments) =>
        runner.RunAsync("ip", arguments, null, cancellationToken);
}
