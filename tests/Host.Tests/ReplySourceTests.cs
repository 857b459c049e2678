using Xunit.Abstractions;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A Gateway with two addresses of each family answers a wireguard-go Client from the address the
/// Client contacted, so a Client behind a stateful firewall (inbound only "ct state established")
/// completes its handshake and pings through the tunnel, over IPv4 and IPv6 outer headers, as with
/// wireguard-go. Before IP_PKTINFO / IPV6_PKTINFO the daemon answered from the address its route
/// prefers and the Client's firewall dropped every reply. The lab is scripts/lab/reply-source.sh
/// (two namespaces of its own, removed with its processes on exit, also on failure).
/// </summary>
public sealed class ReplySourceTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_client_behind_a_stateful_firewall_that_contacts_the_gateways_second_address_gets_through()
    {
        string script = RepositoryFile.Find("scripts/lab/reply-source.sh");
        var result = await ProcessRunner.RunAsync("bash", [script, DaemonProcess.Executable], timeout: TimeSpan.FromSeconds(120));
        output.WriteLine(result.Stdout);
        output.WriteLine(result.Stderr);
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Stdout}{result.Stderr}");
        Assert.Contains("contacted at 192.168.94.99:51001: ok (the Client sees it at 192.168.94.99:51001)", result.Stdout);
        Assert.Contains("contacted at [fd94::99]:51001: ok (the Client sees it at [fd94::99]:51001)", result.Stdout);
        var namespaces = await ProcessRunner.RunAsync("ip", ["netns", "list"]);
        Assert.DoesNotContain("fzsrc-", namespaces.Stdout);
    }
}
