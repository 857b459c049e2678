namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A new private key whose rebuild fails leaves the daemon as it was: the running tunnel, the old
/// key and the peers, and `wg set` reports the failure (EIO). The rebuild fails here where it reads
/// the interface's MTU: the interface was moved into another network namespace (`ip link set NAME
/// netns OTHER`), where the daemon cannot read it (a rename no longer fails it: the daemon follows
/// the interface by its index, see InterfaceRenameTests). Before,
/// the old tunnel was stopped first: the daemon was left with no tunnel under the new key, `wg show`
/// then took the interface for deleted and stopped the daemon, and a `wg set` of the same key again
/// changed nothing (the key was taken as set).
/// </summary>
public sealed class KeyChangeFailureTests
{
    private static async Task OkAsync(NetworkNamespace ns, string file, params string[] arguments)
    {
        var result = await ns.ExecAsync(file, arguments, timeout: TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, $"{file} {string.Join(' ', arguments)}: {result.Stderr}");
    }

    private static int Starts(string log) => log.Split("running on UDP port").Length - 1;

    [Fact]
    public async Task A_key_change_whose_rebuild_fails_keeps_the_running_tunnel_and_old_key_and_a_retry_applies_it()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        // Deleted before ns: an interface left in it (a failed test) is deleted with it.
        await using var elsewhere = await NetworkNamespace.CreateAsync();
        string name = "fzd" + Guid.NewGuid().ToString("N")[..8];
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        var oldKey = TestKeys.New();
        var newKey = TestKeys.New();
        string peer = TestKeys.New().ToBase64(); // stands for a public key
        await File.WriteAllTextAsync(keyFile, oldKey.ToBase64());
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        try
        {
            await daemon.WaitReadyAsync();
            Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "private-key", keyFile, "peer", peer, "allowed-ips", "10.9.0.2/32")).ExitCode);
            Assert.Equal(1, Starts(await File.ReadAllTextAsync(daemon.LogFile)));

            // The TUN device goes on (its descriptor stays attached), but the daemon's network
            // namespace has no interface of that index any more: its MTU cannot be read.
            await OkAsync(ns, "ip", "link", "set", name, "netns", elsewhere.Name);
            await File.WriteAllTextAsync(keyFile, newKey.ToBase64());
            var failed = await ProcessRunner.WgAsync("set", name, "private-key", keyFile);
            Assert.NotEqual(0, failed.ExitCode);
            Assert.Contains("Input/output error", failed.Stderr);

            var shown = await ProcessRunner.WgAsync("show", name, "private-key");
            Assert.True(shown.ExitCode == 0, shown.Stderr + await File.ReadAllTextAsync(daemon.LogFile)); // was: the daemon stopped as if its interface were deleted
            Assert.Equal(oldKey.ToBase64(), shown.Stdout.Trim()); // was: the new key, with no tunnel
            Assert.Contains(peer, (await ProcessRunner.WgAsync("show", name, "peers")).Stdout);
            string log = await File.ReadAllTextAsync(daemon.LogFile);
            Assert.Equal(1, Starts(log)); // the tunnel of the old key was not stopped
            Assert.DoesNotContain("stopping", log);
            Assert.Contains("The new private key was not applied", log);

            // Once the interface is back (with its index: no other took it meanwhile), the same request applies.
            await OkAsync(elsewhere, "ip", "link", "set", name, "netns", ns.Name);
            var retried = await ProcessRunner.WgAsync("set", name, "private-key", keyFile);
            Assert.True(retried.ExitCode == 0, retried.Stderr);
            Assert.Equal(newKey.ToBase64(), (await ProcessRunner.WgAsync("show", name, "private-key")).Stdout.Trim());
            // An interface moved between namespaces comes back down, and a tunnel runs only while its
            // link is up (LinkDownTests): the new key's starts at up.
            await OkAsync(ns, "ip", "link", "set", name, "up");
            Assert.Equal(0, (await ProcessRunner.WgAsync("show", name)).ExitCode);
            Assert.Equal(2, Starts(await File.ReadAllTextAsync(daemon.LogFile))); // was: 1, no tunnel ran
        }
        finally
        {
            File.Delete(keyFile);
        }
    }
}
