using System.Globalization;
using System.Text.RegularExpressions;
using Firezone.Actors.Host.Config;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

/// <summary>wg-quick's set_mtu_up without an MTU key: the MTU from the routes to the peers' endpoints.</summary>
public sealed partial class InterfaceNetworkSetup
{
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

    /// <summary>
    /// Refuses an automatic MTU below 1280 when the file needs IPv6 on the link: the kernel disables
    /// IPv6 on a link below 1280 (and removes its IPv6 addresses), so the route for the Address's
    /// subnet or an IPv6 allowed IP was then refused with ip's "No such device", which named neither
    /// the MTU nor IPv6 (wg-quick fails there too, at its <c>ip -6 route add</c>). A path below 1360
    /// bytes to the endpoints (a 1280-byte IPv6 link) gives such an MTU.
    /// </summary>
    private void RefuseBelowIPv6Minimum(TunnelConfig config, int mtu)
    {
        if (mtu >= WgQuickConfigParser.MinIPv6Mtu)
        {
            return;
        }
        string? what = null;
        var addresses = config.Interface.Addresses;
        for (int i = 0; i < addresses.Count && what is null; i++)
        {
            if (!addresses[i].IsIPv4)
            {
                what = (i < config.Interface.AddressLines.Count ? $"{config.SourcePath}:{config.Interface.AddressLines[i]}: " : $"{config.SourcePath}: ")
                    + $"Address {addresses[i]}";
            }
        }
        if (what is null && config.Peers.SelectMany(static p => p.AllowedIps).FirstOrDefault(static p => !p.IsIPv4) is { } prefix)
        {
            string allowed = (config.AllowedIpLines.TryGetValue(prefix, out int line) ? $"{config.SourcePath}:{line}: " : $"{config.SourcePath}: ")
                + $"AllowedIPs {prefix}";
            if (config.Interface.Table.Mode != RouteTableMode.Off)
            {
                what = allowed;
            }
            else
            {
                // No route is added, so the start goes on (as wg-quick's), but IPv6 through the
                // tunnel cannot work, whatever routes the operator adds: say it once.
                logger.LogWarning("{AllowedIPs} is IPv6, and the MTU wg-quick's rule gives {Interface} here, {Mtu}, is below 1280, the IPv6 minimum: the kernel disables IPv6 on the link, so no IPv6 goes through the tunnel (set MTU = 1280 in [Interface] for it)",
                    allowed, interfaceName, mtu);
            }
        }
        if (what is not null)
        {
            throw new StartupException(
                $"{what} is IPv6, and the MTU wg-quick's rule gives {interfaceName} here, {mtu} ({mtu + 80} on the way to the peers' endpoints, or of the default route, less 80), "
                + $"is below {WgQuickConfigParser.MinIPv6Mtu}, the IPv6 minimum (RFC 8200 section 5): the kernel disables IPv6 on such a link "
                + $"(wg-quick fails there too, at its ip -6 route add: No such device); set MTU = {WgQuickConfigParser.MinIPv6Mtu} in [Interface] "
                + "(the outer datagrams are then fragmented on that path), or leave IPv6 out of the file");
        }
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
}
