using Xunit.Abstractions;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A full tunnel through `up` on a Client whose reverse-path filter is strict (rp_filter=1, RHEL's
/// default), with the Gateway behind a router: the Gateway's datagrams come in by the uplink while
/// the main table sends everything into the tunnel, and the kernel dropped them all (0 of 5 pings;
/// wg-quick's tunnel worked; the laptop review, 2026-11-29). The daemon now adds wg-quick's nftables
/// mark tables (ip and ip6) and removes them at the stop. The lab is
/// scripts/lab/full-tunnel-rp-filter.sh (namespaces of its own, removed with its processes on exit,
/// also on failure).
/// </summary>
public sealed class FullTunnelReversePathTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_full_tunnel_under_a_strict_reverse_path_filter_passes_traffic_and_leaves_no_table()
    {
        string script = RepositoryFile.Find("scripts/lab/full-tunnel-rp-filter.sh");
        var result = await ProcessRunner.RunAsync("bash", [script, DaemonProcess.Executable], timeout: TimeSpan.FromSeconds(120));
        output.WriteLine(result.Stdout);
        output.WriteLine(result.Stderr);
        Assert.Contains("pings answered: 5 of 5", result.Stdout); // before: 0 of 5
        Assert.Contains("table ip firezone-tunnel-fzrpcw;table ip6 firezone-tunnel-fzrpcw;", result.Stdout);
        Assert.Contains("nftables tables after the stop: none", result.Stdout);
        Assert.Equal(0, result.ExitCode);
        var namespaces = await ProcessRunner.RunAsync("ip", ["netns", "list"]);
        Assert.DoesNotContain("fzrp", namespaces.Stdout);
    }
}
