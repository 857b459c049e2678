using System.Globalization;
using System.Text.RegularExpressions;

namespace Firezone.Actors.EndToEnd.Tests.Harness;

/// <summary>
/// The launcher: one WireGuard implementation as the lab's Client or Gateway. `lab.sh start` runs
/// `IMPL -f IFNAME` inside the role's namespace, records its PID, waits for the UAPI socket and
/// configures keys, peer, addresses and routes with `wg set` and `ip`; stopping is by that PID
/// (SIGTERM, then SIGKILL after 5 s; or SIGKILL at once for the crash tests).
/// </summary>
public sealed partial class TunnelSide
{
    private readonly Lab _lab;

    internal TunnelSide(Lab lab, string role)
    {
        _lab = lab;
        Role = role;
        InterfaceName = lab.Prefix + (role == Roles.Client ? "-c" : "-g");
    }

    public string Role { get; }
    public string InterfaceName { get; }
    public string? Implementation { get; private set; }

    public void Start(string implementation)
    {
        Implementation = implementation;
        _lab.Script("start", _lab.Prefix, Role, implementation);
    }

    public int Pid => int.Parse(_lab.Script("pid", _lab.Prefix, Role).Trim(), CultureInfo.InvariantCulture);

    public bool IsRunning => _lab.TryScript("pid", _lab.Prefix, Role).Succeeded;

    public void Stop() => _lab.Script("stop", _lab.Prefix, Role);

    /// <summary>kill -9: no chance to clean up, as in a crash.</summary>
    public void Kill() => _lab.Script("stop", _lab.Prefix, Role, "--kill");

    /// <summary>Removes and re-adds the peer: this side forgets its sessions and must handshake again.</summary>
    public void ReaddPeer() => _lab.Script("peer-readd", _lab.Prefix, Role);

    /// <summary>`wg show IFNAME DUMP-ITEM`, e.g. "endpoints" or "latest-handshakes".</summary>
    public string Wg(string item) => _lab.Exec(Role, "wg", "show", InterfaceName, item);

    public string PeerEndpoint => Wg("endpoints").Split('\t', StringSplitOptions.TrimEntries).Last();

    public long LatestHandshake => long.Parse(Wg("latest-handshakes").Split('\t', StringSplitOptions.TrimEntries).Last(),
        CultureInfo.InvariantCulture);

    /// <summary>
    /// The peer's ECN counters from `firezone-tunnel show IFNAME`
    /// ("ecn: N ECT sent, N CE received, N CE propagated, N ECN drops, N (!!!) events").
    /// </summary>
    public EcnCounters FirezoneEcn()
    {
        var text = FirezoneShow();
        var match = EcnLine().Match(text);
        if (!match.Success)
        {
            throw new InvalidOperationException($"no ecn line in firezone-tunnel show:\n{text}");
        }
        long Group(int i) => long.Parse(match.Groups[i].Value, CultureInfo.InvariantCulture);
        return new EcnCounters(Group(1), Group(2), Group(3), Group(4), Group(5));
    }

    public string FirezoneShow()
    {
        if (Implementation != Implementations.FirezoneTunnel)
        {
            throw new InvalidOperationException($"{Role} runs {Implementation}, not firezone-tunnel");
        }
        var binary = _lab.ReadState("impl-" + Role).Trim();
        return _lab.Exec(Role, binary, "show", InterfaceName);
    }

    [GeneratedRegex(@"ecn: (\d+) ECT sent, (\d+) CE received, (\d+) CE propagated, (\d+) ECN drops, (\d+)")]
    private static partial Regex EcnLine();
}

public sealed record EcnCounters(long EctSent, long CeReceived, long CePropagated, long EcnDrops, long Alarms);
