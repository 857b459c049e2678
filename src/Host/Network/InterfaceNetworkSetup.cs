using System.Globalization;
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
    public string TableName { get; } = TablePrefix + NftName(interfaceName);

    /// <summary>What every gateway's nftables table is named with (inet family), then its interface.</summary>
    private const string TablePrefix = "firezone-tunnel-";

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
            RefuseBelowIPv6Minimum(config, mtu);
            await IpAsync(cancellationToken, "link", "set", "dev", interfaceName, "mtu", mtu.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
            logger.LogInformation("MTU of {Interface} set to {Mtu}, as wg-quick sets it without an MTU key (the largest MTU on the way to the peers' endpoints, or of the default route, less 80)", interfaceName, mtu);
        }
        await IpAsync(cancellationToken, "link", "set", "dev", interfaceName, "up").ConfigureAwait(false);
        WatchAddressesOf(addresses);
        await SetDnsAsync(config, cancellationToken).ConfigureAwait(false);
        await AddRoutesAsync(config, cancellationToken).ConfigureAwait(false);
        if (config.Interface.Role == HostRole.Gateway)
        {
            await EnableGatewayAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sets a sysctl switch to 1. Its value before is recorded (in the state file first) for
    /// <see cref="TearDownAsync"/>, unless an instance that died already recorded the original.
    /// </summary>
    private async Task SetSysctlAsync(string key, CancellationToken cancellationToken)
    {
        string current = (await runner.RunAsync("sysctl", ["-n", key], null, cancellationToken).ConfigureAwait(false)).Trim();
        _state.Namespace ??= await NamespaceIdAsync(cancellationToken).ConfigureAwait(false);
        if (current == "1")
        {
            AdoptOriginalOfAnother(key);
            return;
        }
        bool recorded = _state.Sysctl.TryAdd(key, current);
        if (recorded)
        {
            SaveState();
        }
        try
        {
            await runner.RunAsync("sysctl", ["-q", "-w", key + "=1"], null, cancellationToken).ConfigureAwait(false);
        }
        catch (StartupException) when (recorded)
        {
            // Not changed (a read-only /proc/sys, as in a container): nothing to restore at the stop,
            // which otherwise warned that it could not write back the value the switch still has.
            // So are the switches the kernel ties to a forwarding switch that stayed off
            // (accept_redirects, the interfaces' forwarding), recorded for the change just before;
            // an accept_ra the IPv6 preparation did set to 2 is still written back.
            _state.Sysctl.Remove(key);
            foreach (var tied in _state.Sysctl.Keys.Where(k => ForwardingKeyOf(k) == key && !k.EndsWith(AcceptRaSuffix, StringComparison.Ordinal)).ToArray())
            {
                _state.Sysctl.Remove(tied);
            }
            SaveState();
            throw;
        }
    }

    /// <summary>
    /// A switch that is 1 because another instance of ours in this namespace set it (its state file
    /// records what it was before): this instance records the same original. The switches are
    /// shared, so an instance that stops while another still needs them leaves them on (see
    /// <see cref="TearDownAsync"/>), and the last of them to stop restores the original; without
    /// this, two gateways or two full tunnels stopped one after the other left forwarding or
    /// src_valid_mark on for good.
    /// </summary>
    private void AdoptOriginalOfAnother(string key)
    {
        if (_state.Sysctl.ContainsKey(key) || string.IsNullOrEmpty(_state.Namespace))
        {
            return; // recorded already (left by a killed instance of this interface), or no namespace to match
        }
        string directory = System.IO.Path.GetDirectoryName(StateFile.Path)!;
        IEnumerable<string> files;
        try
        {
            files = Directory.EnumerateFiles(directory, "*.json").Order(StringComparer.Ordinal).ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (var file in files)
        {
            if (file == StateFile.Path)
            {
                continue;
            }
            NetworkSetupState? other;
            try
            {
                other = new NetworkSetupStateFile(file).Load();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            if (other?.Namespace == _state.Namespace && other.Sysctl.TryGetValue(key, out var original))
            {
                _state.Sysctl[key] = original;
                foreach (var (companion, companionOriginal) in other.Sysctl)
                {
                    if (ForwardingKeyOf(companion) == key)
                    {
                        _state.Sysctl.TryAdd(companion, companionOriginal); // the last to stop writes it back too
                    }
                }
                SaveState();
                logger.LogInformation("{Key} is 1, set by the instance that records it in {File} (it was {Original} before): the last of them to stop restores it", key, file, original);
                return;
            }
        }
    }

    /// <summary>This setup's network namespace ("net:[INODE]", as the commands see it), or "" when it cannot be read.</summary>
    private async Task<string> NamespaceIdAsync(CancellationToken cancellationToken)
    {
        try
        {
            return (await runner.RunAsync("readlink", ["/proc/self/ns/net"], null, cancellationToken).ConfigureAwait(false)).Trim();
        }
        catch (StartupException e)
        {
            logger.LogDebug("Cannot tell the network namespace: {Problem}", e.Message);
            return "";
        }
    }

    private async Task EnableGatewayAsync(CancellationToken cancellationToken)
    {
        foreach (var key in ForwardingKeys)
        {
            await PrepareForwardingChangeAsync(key, cancellationToken).ConfigureAwait(false);
            await SetSysctlAsync(key, cancellationToken).ConfigureAwait(false);
        }
        if (!_state.NftablesTable)
        {
            _state.NftablesTable = true;
            SaveState();
        }
        await runner.RunAsync("nft", ["-f", "-"], TableScript(), cancellationToken).ConfigureAwait(false);
        WatchTable();
        logger.LogInformation("Gateway: forwarding on, nftables table {Table} masquerades traffic from {Interface}", TableName, interfaceName);
    }

    /// <summary>
    /// The gateway's nftables table: traffic from the tunnel leaving by any other interface takes
    /// that interface's address, as a Firezone Gateway does toward its resources. "add" then
    /// "delete" first: a table a killed instance left is replaced, not merged into, in the same
    /// atomic transaction.
    /// </summary>
    private string TableScript() => $$"""
        add table inet {{TableName}}
        delete table inet {{TableName}}
        table inet {{TableName}} {
          chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            iifname "{{interfaceName}}" oifname != "{{interfaceName}}" masquerade
          }
        }

        """;

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
        foreach (var family in await DeleteMarkTablesAsync(previous.MarkTables, leftovers: true, cancellationToken).ConfigureAwait(false))
        {
            _state.MarkTables.Add(family); // kept for this instance's stop to try again
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
        // First: the table this stop deletes must not be added again, nor the interface's removal reported.
        await StopWatchingTableAsync().ConfigureAwait(false);
        await StopWatchingAddressesAsync().ConfigureAwait(false);
        // wg-quick's unset_dns, first (as its del_if does), so that no lookup goes to a server that
        // is no longer routed. A record that cannot be removed stays recorded for the next start.
        if (_state.Resolvconf is { } dnsRecord && await TryRemoveDnsRecordAsync(dnsRecord, cancellationToken).ConfigureAwait(false))
        {
            _state.Resolvconf = null;
        }
        // The tables of this instance's own `not fwmark` rules, to tell another full tunnel's from ours.
        var ownMarkTables = OwnMarkRuleTables();
        // Newest first, like a stack of what was added.
        for (int i = _state.Undo.Count - 1; i >= 0; i--)
        {
            if (IsSharedSuppressRuleUndo(_state.Undo[i])
                && await OtherFullTunnelTableAsync(_state.Undo[i][0], ownMarkTables, cancellationToken).ConfigureAwait(false) is { } otherTable)
            {
                logger.LogInformation("Policy rule '{Rule}' ({Family}) stays: the full tunnel of table {Table} still uses it",
                    string.Join(' ', _state.Undo[i][3..]), _state.Undo[i][0], otherTable);
                continue;
            }
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
        _state.MarkTables = await DeleteMarkTablesAsync(_state.MarkTables, leftovers: false, cancellationToken).ConfigureAwait(false);
        _markScripts.Clear();
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
            catch (StartupException e) when (e.NotInstalled)
            {
                // No nft, so no table: the start failed on it, and said so.
                logger.LogDebug("No nftables table {Table} to remove: {Problem}", TableName, e.Message);
            }
            catch (StartupException e) when (e.Message.EndsWith("No such file or directory", StringComparison.Ordinal))
            {
                // Removed under the running gateway by another program: `nft flush ruleset`, which
                // Debian's /etc/nftables.conf starts with (systemctl reload nftables), a firewall
                // manager's reload. Nothing masqueraded since then; the line says so, where nft's own
                // "Could not process rule" read as a failure of this stop.
                logger.LogWarning(TableGoneMessage, TableName);
            }
            catch (StartupException e)
            {
                logger.LogWarning("Could not remove nftables table {Table}: {Problem}", TableName, e.Message);
            }
            _state.NftablesTable = false;
        }
        string? otherForwarder = _state.Sysctl.Keys.Any(FollowsForwarding)
            ? await OtherForwarderAsync(cancellationToken).ConfigureAwait(false)
            : null;
        // The forwarding switches first: switching one off resets the switches the kernel ties to
        // it, which are then written back (see PrepareForwardingChangeAsync).
        var interfaceSwitches = new List<(string Key, string Value)>();
        var staying = new List<string>(); // one line for them all: a host with 70 veths has 140 such switches
        foreach (var (key, value) in _state.Sysctl.OrderBy(entry => ForwardingKeys.Contains(entry.Key) ? 0 : 1).ToArray())
        {
            if (otherForwarder is not null && FollowsForwarding(key))
            {
                // accept_redirects and accept_ra stay as forwarding has them (0 and 2), not 1.
                staying.Add($"{key} (was {value})");
                _state.Sysctl.Remove(key);
                continue;
            }
            if (key == SourceValidMarkKey
                && await OtherFullTunnelTableAsync("-4", ownMarkTables, cancellationToken).ConfigureAwait(false) is { } fullTunnelTable)
            {
                logger.LogInformation("{Key} stays 1 (was {Value} before): the full tunnel of table {Table} still marks its packets", key, value, fullTunnelTable);
                _state.Sysctl.Remove(key);
                continue;
            }
            if (IsInterfaceSwitch(key))
            {
                interfaceSwitches.Add((key, value)); // after the namespace's switches, all in one sysctl
                continue;
            }
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
        if (staying.Count > 0)
        {
            logger.LogInformation("{Keys} stay as they are: {Reason}", string.Join(", ", staying), otherForwarder);
        }
        await RestoreInterfaceSwitchesAsync(interfaceSwitches, cancellationToken).ConfigureAwait(false);
        if (!_ownsStateFile)
        {
            return;
        }
        if (_state.Sysctl.Count == 0 && _state.Resolvconf is null && _state.MarkTables.Count == 0)
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

    /// <summary>The stop's Warning when another program removed the gateway's nftables table while it ran.</summary>
    internal const string TableGoneMessage =
        "nftables table inet {Table} was already gone at the stop: another program removed it while the gateway ran (nft flush ruleset, as a reload of nftables.service runs it), and the gateway did not masquerade from then on; restart the interface after such a reload";

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
