using Xunit.Abstractions;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A Client whose default route moves to its second uplink while the first keeps its address (a
/// laptop's Wi-Fi still associated when Ethernet takes the default route), behind a router that
/// drops datagrams whose source is not of the link they came in on (BCP 38, rp_filter=1). The
/// Client kept sending from the first uplink's address through the second, and the Gateway's
/// initiations through the first set that source again: no reply in 110 s (the roaming review,
/// 2026-11-29; wireguard-go 0.06 s). Now the route change makes the Client send from the kernel's
/// choice until a datagram arrives at an address again, and the Gateway roams to the new address.
/// The lab is scripts/lab/uplink-switch.sh (namespaces of its own, removed with its processes on
/// exit, also on failure).
/// </summary>
public sealed class UplinkSwitchTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_client_whose_default_route_moves_to_its_other_uplink_is_answered_again_at_once_from_its_new_address()
    {
        string script = RepositoryFile.Find("scripts/lab/uplink-switch.sh");
        var result = await ProcessRunner.RunAsync("bash", [script, DaemonProcess.Executable, DaemonProcess.Executable], timeout: TimeSpan.FromSeconds(120));
        output.WriteLine(result.Stdout);
        output.WriteLine(result.Stderr);
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Stdout}{result.Stderr}"); // before: "none within 25 s"
        var first = System.Text.RegularExpressions.Regex.Match(result.Stdout, @"first reply after the switch: \+([0-9.]+) s");
        Assert.True(first.Success, result.Stdout);
        // A bound, not a speed test: wireguard-go's route listener takes 0.06 s here, a Client left
        // to its handshake retry 15 s or more.
        Assert.InRange(double.Parse(first.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 0, 5);
        Assert.Contains("Gateway sees the Client at 10.203.2.2:", result.Stdout);
        var namespaces = await ProcessRunner.RunAsync("ip", ["netns", "list"]);
        Assert.DoesNotContain("fzupc", namespaces.Stdout);
    }
}
