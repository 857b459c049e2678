using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Network;

public sealed partial class InterfaceNetworkSetup
{
    /// <summary>
    /// The kernel resets this when IPv4 forwarding is switched (to 0 when on, to 1 when off):
    /// an operator's <c>accept_redirects = 0</c>, a common hardening, came back as 1 after a
    /// gateway's start and stop.
    /// </summary>
    private const string AcceptRedirectsKey = "net.ipv4.conf.all.accept_redirects";

    private const string Ipv6ConfPrefix = "net.ipv6.conf.";

    private const string Ipv4ConfPrefix = "net.ipv4.conf.";

    private const string AcceptRaSuffix = ".accept_ra";

    private const string ForwardingSuffix = ".forwarding";

    /// <summary>
    /// Records what the kernel changes with a forwarding switch that is about to go on, so that
    /// <see cref="TearDownAsync"/> writes it back after switching it off again:
    /// <list type="bullet">
    /// <item>IPv4: <c>net.ipv4.conf.all.accept_redirects</c>, which the kernel sets to 0 and, at
    /// the switch back, to 1 whatever it was;</item>
    /// <item>IPv6: a host that forwards ignores router advertisements on interfaces with
    /// <c>accept_ra = 1</c>, and the kernel drops the default routes they gave at once, so a host
    /// whose IPv6 default route comes from its router (most clouds) lost IPv6 while the gateway
    /// ran, even with no IPv6 in the tunnel. Each such interface gets <c>accept_ra = 2</c> (accept
    /// them while forwarding) before forwarding goes on, and 1 again after. Interfaces that appear
    /// later take the namespace's default (1).</item>
    /// <item>Both: the kernel writes the namespace's switch into every interface's own
    /// <c>forwarding</c> (and the default's), so an interface an operator let forward while the
    /// namespace's switch was 0 (IPv4 forwards by the receiving interface's switch) stopped
    /// forwarding at the gateway's stop. Those at 1 are set to 1 again after.</item>
    /// </list>
    /// </summary>
    private async Task PrepareForwardingChangeAsync(string key, CancellationToken cancellationToken)
    {
        if ((await runner.RunAsync("sysctl", ["-n", key], null, cancellationToken).ConfigureAwait(false)).Trim() == "1")
        {
            return; // on already: the kernel changes nothing
        }
        bool ipv4 = key == ForwardingKeys[0];
        var switches = await InterfaceSwitchesAsync(ipv4 ? Ipv4ConfPrefix : Ipv6ConfPrefix, ipv4 ? [ForwardingSuffix] : [ForwardingSuffix, AcceptRaSuffix], cancellationToken).ConfigureAwait(false);
        var forwarding = switches.Where(s => s.Suffix == ForwardingSuffix && s.Value == "1").ToList();
        foreach (var (forwardingKey, _, _, _) in forwarding)
        {
            if (_state.Sysctl.TryAdd(forwardingKey, "1"))
            {
                SaveState();
            }
        }
        if (forwarding.Count > 0)
        {
            logger.LogInformation("{Key}: {Interfaces} forward(s) already, and will again after the gateway's stop (the namespace's switch sets every interface's)",
                key, string.Join(", ", forwarding.Select(f => f.Device)));
        }
        if (ipv4)
        {
            string redirects = (await runner.RunAsync("sysctl", ["-n", AcceptRedirectsKey], null, cancellationToken).ConfigureAwait(false)).Trim();
            if (redirects.Length > 0 && _state.Sysctl.TryAdd(AcceptRedirectsKey, redirects))
            {
                SaveState();
            }
            return;
        }
        var keep = switches.Where(s => s.Suffix == AcceptRaSuffix && s.Value == "1" && s.Device is not ("default" or "lo")).ToList();
        if (keep.Count == 0)
        {
            return;
        }
        foreach (var (raKey, _, _, _) in keep)
        {
            if (_state.Sysctl.TryAdd(raKey, "1"))
            {
                SaveState();
            }
        }
        // One sysctl for all of them; -e: an interface deleted since the listing is skipped.
        await runner.RunAsync("sysctl", ["-q", "-e", "-w", .. keep.Select(s => s.Key + "=2")], null, cancellationToken).ConfigureAwait(false);
        logger.LogInformation("IPv6 forwarding: accept_ra 2 on {Interfaces}, so that they keep the default routes their routers advertise (a host that forwards ignores them otherwise)",
            string.Join(", ", keep.Select(s => s.Device)));
    }

    /// <summary>
    /// The switches <c>PREFIX.DEVICE.SUFFIX</c> (each suffix) of every interface of the namespace,
    /// and of <c>default</c>, but the namespace's (<c>all</c>) and this interface's own, with their
    /// values; the device as sysctl writes it ('/' for a '.' in its name), in the kernel's order.
    /// Two short commands whatever the number of interfaces: the interfaces listed from
    /// <c>/proc/sys/net/ipvX/conf</c> (which, read by a process in a namespace, is that namespace's),
    /// then one sysctl that reads those switches only. <c>sysctl -a --pattern</c> read every
    /// switch of every interface to pick these (0.27 s a call with 70 interfaces, three calls at a
    /// gateway's start: 1.6 s instead of 0.7 s on a host with many container veths).
    /// </summary>
    private async Task<List<(string Key, string Device, string Suffix, string Value)>> InterfaceSwitchesAsync(string prefix, string[] suffixes, CancellationToken cancellationToken)
    {
        var devices = await ConfDevicesAsync(prefix, cancellationToken).ConfigureAwait(false);
        string own = interfaceName.Replace('.', '/');
        var keys = new List<string>();
        foreach (string device in devices)
        {
            if (device != "all" && device != own)
            {
                keys.AddRange(suffixes.Select(suffix => prefix + device + suffix));
            }
        }
        var found = new List<(string, string, string, string)>();
        if (keys.Count == 0)
        {
            return found;
        }
        // -e: an interface deleted since the listing is skipped, not an error.
        string listing = await runner.RunAsync("sysctl", ["-e", .. keys], null, cancellationToken).ConfigureAwait(false);
        foreach (var line in listing.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // "net.ipv6.conf.eth0.accept_ra = 1"
            int equals = line.IndexOf(" = ", StringComparison.Ordinal);
            if (equals < 0)
            {
                continue;
            }
            string switchKey = line[..equals];
            string? suffix = suffixes.FirstOrDefault(s => switchKey.EndsWith(s, StringComparison.Ordinal));
            if (suffix is null || !switchKey.StartsWith(prefix, StringComparison.Ordinal) || switchKey.Length <= prefix.Length + suffix.Length)
            {
                continue;
            }
            found.Add((switchKey, switchKey[prefix.Length..^suffix.Length], suffix, line[(equals + 3)..]));
        }
        return found;
    }

    /// <summary>
    /// The devices of <c>/proc/sys/net/ipv4/conf</c> or <c>.../ipv6/conf</c> (<paramref name="prefix"/>
    /// is the switches' <c>net.ipvX.conf.</c>) as sysctl names them, read through the runner so
    /// that it is the namespace the commands run in.
    /// </summary>
    private async Task<List<string>> ConfDevicesAsync(string prefix, CancellationToken cancellationToken)
    {
        string directory = "/proc/sys/" + prefix.TrimEnd('.').Replace('.', '/');
        string listing = await runner.RunAsync("ls", ["-1", directory], null, cancellationToken).ConfigureAwait(false);
        return listing.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(name => name.Replace('.', '/'))
            .ToList();
    }

    /// <summary>
    /// Writes the interfaces' switches back (<c>accept_ra</c>, <c>forwarding</c>), in one sysctl
    /// whatever their number; those of an interface deleted while the gateway ran are not
    /// restored (nothing to restore) and said so. On failure they stay in the state file, for the
    /// next stop to restore.
    /// </summary>
    private async Task RestoreInterfaceSwitchesAsync(List<(string Key, string Value)> switches, CancellationToken cancellationToken)
    {
        if (switches.Count == 0)
        {
            return;
        }
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (string prefix in new[] { Ipv4ConfPrefix, Ipv6ConfPrefix })
        {
            if (switches.Any(s => s.Key.StartsWith(prefix, StringComparison.Ordinal)))
            {
                try
                {
                    present.UnionWith((await ConfDevicesAsync(prefix, cancellationToken).ConfigureAwait(false)).Select(device => prefix + device + "."));
                }
                catch (StartupException e)
                {
                    logger.LogDebug("Cannot list the interfaces of {Prefix}: {Problem}", prefix, e.Message);
                }
            }
        }
        var restore = new List<(string Key, string Value)>();
        foreach (var (key, value) in switches)
        {
            string deviceKey = key[..(key.LastIndexOf('.') + 1)]; // "net.ipv6.conf.eth0."
            if (present.Count > 0 && !present.Contains(deviceKey))
            {
                logger.LogInformation("{Key} not restored: its interface is gone", key);
                _state.Sysctl.Remove(key);
                continue;
            }
            restore.Add((key, value));
        }
        if (restore.Count == 0)
        {
            return;
        }
        try
        {
            // -e: an interface deleted since the listing is skipped, not an error.
            await runner.RunAsync("sysctl", ["-q", "-e", "-w", .. restore.Select(s => s.Key + "=" + s.Value)], null, cancellationToken).ConfigureAwait(false);
            foreach (var (key, _) in restore)
            {
                _state.Sysctl.Remove(key);
            }
        }
        catch (StartupException e)
        {
            logger.LogWarning("Could not restore {Keys}: {Problem}", string.Join(", ", restore.Select(s => s.Key)), e.Message);
        }
    }

    /// <summary>The forwarding switch whose change the kernel ties <paramref name="key"/> to, or null.</summary>
    private static string? ForwardingKeyOf(string key) =>
        ForwardingKeys.Contains(key) ? null
        : key == AcceptRedirectsKey ? ForwardingKeys[0]
        : key.StartsWith(Ipv4ConfPrefix, StringComparison.Ordinal) && key.EndsWith(ForwardingSuffix, StringComparison.Ordinal) ? ForwardingKeys[0]
        : key.StartsWith(Ipv6ConfPrefix, StringComparison.Ordinal) && (key.EndsWith(AcceptRaSuffix, StringComparison.Ordinal) || key.EndsWith(ForwardingSuffix, StringComparison.Ordinal)) ? ForwardingKeys[1]
        : null;

    /// <summary>A forwarding switch, or one tied to it: they stay on, or are restored, together.</summary>
    private static bool FollowsForwarding(string key) => ForwardingKeys.Contains(key) || ForwardingKeyOf(key) is not null;

    /// <summary>A switch of one interface (<c>net.ipv6.conf.eth0.accept_ra</c>, <c>net.ipv4.conf.eth0.forwarding</c>), which goes with it.</summary>
    private static bool IsInterfaceSwitch(string key) => ForwardingKeyOf(key) is not null && key != AcceptRedirectsKey;

    /// <summary>
    /// Why forwarding must stay on when this gateway stops, or null. The forwarding switches are
    /// shared by every interface of the network namespace, and what else routes through it is told
    /// by its nftables ruleset (called after this gateway's own table is deleted):
    /// <list type="bullet">
    /// <item>another gateway's table (running, or left by a killed one whose next start needs
    /// forwarding as well): restoring this one's "0" would stop the other one forwarding;</item>
    /// <item>another program's address translation (masquerade, snat or dnat in a table not ours):
    /// Docker, libvirt, LXD and Kubernetes masquerade their containers' or guests' traffic and
    /// forward ports into them, in tables of their own or iptables-nft's <c>ip nat</c>. One that
    /// started after this gateway found forwarding on and did not set it itself, so the "0" this
    /// gateway found would cut its containers off.</item>
    /// </list>
    /// No Linux interface says who else needs forwarding; this is a heuristic, and rules of
    /// iptables-legacy (not in the nftables ruleset) are not seen. When nft cannot tell, the
    /// switches are restored as before.
    /// </summary>
    private async Task<string?> OtherForwarderAsync(CancellationToken cancellationToken)
    {
        string ruleset;
        try
        {
            ruleset = await runner.RunAsync("nft", ["list", "ruleset"], null, cancellationToken).ConfigureAwait(false);
        }
        catch (StartupException e)
        {
            logger.LogDebug("Cannot list the nftables ruleset: {Problem}", e.Message);
            return null;
        }
        return OtherForwarder(ruleset, TableName);
    }

    /// <summary>The first reason in <paramref name="ruleset"/> (<c>nft list ruleset</c>) for forwarding to stay on (see <see cref="OtherForwarderAsync"/>).</summary>
    internal static string? OtherForwarder(string ruleset, string ownTable)
    {
        const string tableKeyword = "table ";
        string? table = null;
        foreach (var rawLine in ruleset.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (rawLine.StartsWith(tableKeyword, StringComparison.Ordinal))
            {
                table = rawLine[tableKeyword.Length..].TrimEnd('{').TrimEnd(); // "inet firezone-tunnel-wg0"
                string name = table[(table.IndexOf(' ') + 1)..];
                // A gateway's table is family inet; a full tunnel's mark tables (ip, ip6) forward nothing.
                if (table.StartsWith("inet ", StringComparison.Ordinal) && name.StartsWith(TablePrefix, StringComparison.Ordinal) && name != ownTable)
                {
                    return $"nftables table {table} says another gateway still forwards here";
                }
                continue;
            }
            if (table is null || table.EndsWith(' ' + ownTable, StringComparison.Ordinal))
            {
                continue;
            }
            // The statements of a rule, without its comment (whose text could name one).
            int comment = rawLine.IndexOf(" comment \"", StringComparison.Ordinal);
            var statements = (comment < 0 ? rawLine : rawLine[..comment]).Split(' ');
            if (statements.Any(word => word is "masquerade" or "snat" or "dnat"))
            {
                return $"nftables table {table} translates addresses for another program (\"{rawLine}\"), which may need forwarding";
            }
        }
        return null;
    }
}
