using System.Globalization;
using System.Text.RegularExpressions;
using Firezone.Actors.Host.Tunnel;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The tunnel socket's receive queue: 1 MiB (2 MiB booked), or the namespace's
/// <c>net.core.rmem_default</c> when an operator set that higher (a fixed 1 MiB left no way to
/// give a fast NIC a deeper queue).
/// </summary>
public sealed class UdpReceiveQueueTests
{
    [Theory]
    [InlineData(null, 1 << 20)]
    [InlineData("212992\n", 1 << 20)]
    [InlineData("1048576\n", 1 << 20)]
    [InlineData("8388608\n", 8 << 20)]
    [InlineData("-5\n", 1 << 20)]
    [InlineData("lots\n", 1 << 20)]
    public void The_queue_is_1_MiB_or_a_larger_rmem_default(string? rmemDefault, int expected) =>
        Assert.Equal(expected, UdpReceiveQueue.BytesFor(rmemDefault));

    /// <summary>
    /// The daemon's socket books twice what the rule gives for this machine's <c>rmem_default</c>
    /// (read, not changed: a namespace cannot set it on this kernel, and the host's is not a test's to
    /// change), and the tunnel's start line says how much.
    /// </summary>
    [Fact]
    public async Task The_tunnel_socket_books_the_queue_the_machine_s_rmem_default_gives_and_the_log_says_so()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        var inside = await ns.ExecAsync("cat", ["/proc/sys/net/core/rmem_default"], timeout: TimeSpan.FromSeconds(15));
        Assert.True(inside.ExitCode == 0, inside.Stderr);
        int expected = 2 * UdpReceiveQueue.BytesFor(inside.Stdout);
        string name = "fzq" + Guid.NewGuid().ToString("N")[..8];
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        await daemon.WaitReadyAsync();
        var key = await ns.ExecAsync("wg", ["genkey"], timeout: TimeSpan.FromSeconds(15));
        var set = await ns.ExecAsync("wg", ["set", name, "private-key", "/dev/stdin"], timeout: TimeSpan.FromSeconds(15), stdin: key.Stdout);
        Assert.True(set.ExitCode == 0, set.Stderr);
        var up = await ns.ExecAsync("ip", ["link", "set", name, "up"], timeout: TimeSpan.FromSeconds(15));
        Assert.True(up.ExitCode == 0, up.Stderr);
        var shown = await ProcessRunner.WgAsync("show", name, "listen-port");
        Assert.True(shown.ExitCode == 0, shown.Stderr);
        string port = shown.Stdout.Trim();

        var sockets = await ns.ExecAsync("ss", ["-H", "-u", "-l", "-n", "-m"], timeout: TimeSpan.FromSeconds(15));
        Assert.True(sockets.ExitCode == 0, sockets.Stderr);
        // "UNCONN 0 0 *:51820 *:*\n\t skmem:(r0,rb2097152,t0,tb16777216,...)"
        var booked = Regex.Match(sockets.Stdout, $@":{port} [^\n]*\n\s*skmem:\(r\d+,rb(\d+),");
        Assert.True(booked.Success, sockets.Stdout);
        Assert.Equal(expected, int.Parse(booked.Groups[1].Value, CultureInfo.InvariantCulture));
        string line = $"receive queue {expected} bytes booked";
        string log = "";
        for (var deadline = DateTime.UtcNow.AddSeconds(10); DateTime.UtcNow < deadline && !log.Contains(line, StringComparison.Ordinal); await Task.Delay(50))
        {
            log = await File.ReadAllTextAsync(daemon.LogFile);
        }
        Assert.Contains(line, log);
    }
}
