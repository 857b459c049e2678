using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Host.Config;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>
/// Service mode's share of wg-quick(8): the interface's addresses, routes for the peers' allowed
/// IPs, and for a gateway, IP forwarding and an nftables masquerade table of its own. Addresses and
/// routes disappear with the TUN device; <see cref="TearDownAsync"/> removes the nftables table and
/// restores the forwarding switches it changed, so a stopped service leaves nothing behind.
/// </summary>
public sealed class InterfaceNetworkSetup(string interfaceName, ICommandRunner runner, ILogger logger)
{
    private static readonly string[] ForwardingKeys = ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"];

    private readonly Dictionary<string, string> _previousForwarding = [];
    private bool _tableAdded;

    /// <summary>The nftables table a gateway adds (inet family: one table for IPv4 and IPv6).</summary>
    public string TableName => "firezone-tunnel-" + interfaceName;

    public async Task ApplyAsync(TunnelConfig config, CancellationToken cancellationToken)
    {
        foreach (var address in config.Interface.Addresses)
        {
            await IpAsync(cancellationToken, address.IsIPv4 ? "-4" : "-6", "address", "add", address.ToString(), "dev", interfaceName).ConfigureAwait(false);
        }
        await IpAsync(cancellationToken, "link", "set", "dev", interfaceName, "up").ConfigureAwait(false);
        foreach (var peer in config.Peers)
        {
            foreach (var prefix in peer.AllowedIps)
            {
                await AddRouteAsync(prefix, cancellationToken).ConfigureAwait(false);
            }
        }
        if (config.Interface.Role == HostRole.Gateway)
        {
            await EnableGatewayAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task AddRouteAsync(IpPrefix prefix, CancellationToken cancellationToken)
    {
        if (prefix.Length == 0)
        {
            // A default route through the tunnel would also capture the tunnel's own UDP datagrams;
            // wg-quick avoids that with an fwmark and a policy-routing table (its Table/FwMark logic),
            // which this host does not do.
            logger.LogWarning("Not routing {Prefix} through {Interface}: default routes need wg-quick's policy routing", prefix.ToString(), interfaceName);
            return;
        }
        // "replace", not "add": a route the address assignment already created (the connected
        // subnet) is not an error.
        await IpAsync(cancellationToken, prefix.IsIPv4 ? "-4" : "-6", "route", "replace", prefix.ToString(), "dev", interfaceName).ConfigureAwait(false);
    }

    private async Task EnableGatewayAsync(CancellationToken cancellationToken)
    {
        foreach (var key in ForwardingKeys)
        {
            string current = (await runner.RunAsync("sysctl", ["-n", key], null, cancellationToken).ConfigureAwait(false)).Trim();
            if (current != "1")
            {
                await runner.RunAsync("sysctl", ["-q", "-w", key + "=1"], null, cancellationToken).ConfigureAwait(false);
                _previousForwarding[key] = current;
            }
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

    /// <summary>Undoes what the TUN device's removal does not: the nftables table and the forwarding switches.</summary>
    public async Task TearDownAsync(CancellationToken cancellationToken)
    {
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
        foreach (var (key, value) in _previousForwarding)
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
        _previousForwarding.Clear();
    }

    private Task<string> IpAsync(CancellationToken cancellationToken, params string[] arguments) =>
        runner.RunAsync("ip", arguments, null, cancellationToken);
}
