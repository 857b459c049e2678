using Xunit.Abstractions;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// `wg show`'s transfer counts what left the machine, as with wireguard-go: a peer whose endpoint
/// the kernel refuses (no route, a firewall) shows nothing sent, and the log says why.
/// </summary>
public sealed class TransferCountTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Handshake_initiations_a_firewall_refuses_are_not_counted_as_sent_and_the_log_says_why()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        // In this namespace only: every UDP datagram to port 9 is dropped on output, so sendmsg
        // fails with EPERM, as it fails with ENETUNREACH when there is no route.
        string table = "fzt-refuse";
        foreach (string[] command in (string[][])[
            ["add", "table", "inet", table],
            ["add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; }"],
            ["add", "rule", "inet", table, "out", "udp", "dport", "9", "drop"]])
        {
            var result = await ns.ExecAsync("nft", command);
            Assert.True(result.ExitCode == 0, result.Stderr);
        }
        string name = "fzx" + Guid.NewGuid().ToString("N")[..8];
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        await daemon.WaitReadyAsync();
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        var peer = TestKeys.New();
        try
        {
            await File.WriteAllTextAsync(keyFile, TestKeys.New().ToBase64());
            // A persistent keepalive starts the handshake at once; its retries follow every 5 s.
            var set = await ProcessRunner.WgAsync("set", name, "private-key", keyFile, "listen-port", "0",
                "peer", peer.ToBase64(), "allowed-ips", "10.47.0.0/24", "endpoint", "127.0.0.1:9", "persistent-keepalive", "1");
            Assert.True(set.ExitCode == 0, set.Stderr);

            // The retry's step logs that the first initiation did not leave.
            string log = "";
            using var bound = new CancellationTokenSource(Bound);
            while (!log.Contains("were not sent", StringComparison.Ordinal))
            {
                await Task.Delay(200, bound.Token);
                log = await File.ReadAllTextAsync(daemon.LogFile, bound.Token);
            }
            output.WriteLine(log);
            Assert.Contains("Operation not permitted (errno 1)", log);

            string transfer = (await ProcessRunner.WgAsync("show", name, "transfer")).Stdout;
            Assert.Equal($"{peer.ToBase64()}\t0\t0\n", transfer);
            string show = (await ProcessRunner.WgAsync("show", name)).Stdout;
            Assert.DoesNotContain("transfer:", show); // as wireguard-go: no line while nothing moved
        }
        finally
        {
            File.Delete(keyFile);
        }
    }
}
