using System.Net.Sockets;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The daemon under a low open-file limit and a read-only socket directory (found by the review of
/// hardened resource limits, 2026-11-29). The .NET runtime keeps some 200 descriptors open for its
/// assemblies: under `ulimit -n 32` every command died with an "Unhandled exception" stack trace
/// and SIGABRT (exit 134), at 64 `show` and `up --check` too, at 128 or 200 a start did; at 224 the daemon ran with 19 to spare, and a client that
/// held 19 UAPI connections open took the last one, the runtime's next descriptor failed and it
/// aborted ("Out of memory.", exit 134); an accept(2) that failed (EMFILE) ended the accept loop
/// without a word, every wg after waited forever. A read-only /var/run/wireguard was "cannot
/// listen: Unknown socket error".
/// </summary>
public sealed class OpenFileLimitTests
{
    private static string NewName(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    [Theory]
    [InlineData(32)]
    [InlineData(128)]
    [InlineData(255)]
    public async Task A_limit_too_low_for_the_daemon_is_one_line_naming_it_and_exit_code_78(int limit)
    {
        // A start (the file is not there: had the check let it through, it would fail reading it).
        var run = await ProcessRunner.RunAsync("prlimit", [$"--nofile={limit}", DaemonProcess.Executable, "up", "--config", $"/nonexistent/{NewName("fzl")}.conf"]);

        Assert.Equal(78, run.ExitCode);
        Assert.Equal($"firezone-tunnel: the open-file limit (RLIMIT_NOFILE) is {limit}, too low: it needs at least 256 "
            + "(the .NET runtime keeps its assemblies open: some 200 descriptors in a daemon); raise it: LimitNOFILE= in the unit, ulimit -n, docker run --ulimit nofile=\n", run.Stderr);
    }

    /// <summary>
    /// The commands that start no daemon need far fewer descriptors (measured: --version from 51,
    /// --help 55, up --check 65, save 69, show of a running daemon 70): at 128 they work, where
    /// the daemon's 256 refused them all, `--version` and `--help` included, with exit code 78.
    /// </summary>
    [Theory]
    [InlineData("--version")]
    [InlineData("--help")]
    [InlineData("show")]
    [InlineData("up --check")]
    public async Task A_command_that_starts_no_daemon_runs_under_a_limit_of_128(string command)
    {
        string name = NewName("fzl");
        string[] arguments = command switch
        {
            "show" => ["show", name],
            "up --check" => ["up", "--check", "--config", $"/nonexistent/{name}.conf"],
            _ => [command],
        };
        var run = await ProcessRunner.RunAsync("prlimit", ["--nofile=128", DaemonProcess.Executable, .. arguments]);

        Assert.DoesNotContain("open-file limit", run.Stderr, StringComparison.Ordinal);
        Assert.Equal(command switch { "show" => 1, "up --check" => 78, _ => 0 }, run.ExitCode); // no such interface; no such file
    }

    [Fact]
    public async Task A_limit_too_low_for_any_command_names_the_128_they_need()
    {
        var run = await ProcessRunner.RunAsync("prlimit", ["--nofile=64", DaemonProcess.Executable, "show", NewName("fzl")]);

        Assert.Equal(78, run.ExitCode);
        Assert.Equal("firezone-tunnel: the open-file limit (RLIMIT_NOFILE) is 64, too low: it needs at least 128 "
            + "(the .NET runtime keeps its assemblies open: some 200 descriptors in a daemon); raise it: LimitNOFILE= in the unit, ulimit -n, docker run --ulimit nofile=\n", run.Stderr);
    }

    [Fact]
    public async Task UAPI_clients_that_hold_connections_at_a_low_limit_wait_instead_of_aborting_the_daemon()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = NewName("fzl");
        await using var daemon = DaemonProcess.StartUnder(ns, name, ["prlimit", "--nofile=256", "--"], "-f", name);
        await daemon.WaitReadyAsync();
        Assert.Equal(0, (await ProcessRunner.WgAsync("set", name, "listen-port", "0")).ExitCode);

        var held = new List<Socket>();
        try
        {
            // More than the ~50 descriptors the limit leaves: those past the daemon's slots wait
            // in the listen backlog, and once that is full their connect waits too.
            for (int i = 0; i < 80; i++)
            {
                var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                held.Add(client);
                using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                try
                {
                    await client.ConnectAsync(new UnixDomainSocketEndPoint(daemon.SocketPath), bound.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException)
                {
                    break; // the backlog is full (EAGAIN) or the connect waits
                }
            }
            await Task.Delay(500);
            Assert.False(daemon.HasExited, "the daemon exited: " + daemon.StderrSoFar);
        }
        finally
        {
            foreach (var client in held)
            {
                client.Dispose();
            }
        }

        var show = await ProcessRunner.WgAsync("show", name, "listen-port");
        Assert.True(show.ExitCode == 0, show.Stderr + daemon.StderrSoFar);
        Assert.False(daemon.HasExited);
        string log = await daemon.WaitForLogAsync("as many as the open-file limit leaves room for");
        Assert.Contains("as many as the open-file limit leaves room for (open-file limit 256, ", log);
    }

    [Fact]
    public async Task An_accept_that_fails_for_want_of_descriptors_is_said_once_and_tried_again()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = NewName("fzl");
        await using var daemon = DaemonProcess.Start(ns, name, "-f", name);
        await daemon.WaitReadyAsync();

        Task<ProcessRunner.Result> show;
        await using (await SyscallFailure.StartAsync(daemon.Pid, "accept4", "EMFILE"))
        {
            show = ProcessRunner.WgAsync("show", name, "listen-port");
            await daemon.WaitForLogAsync("cannot accept a connection");
            await Task.Delay(600); // a few retries, which fail too
        }

        // Was: the accept loop ended as if the daemon stopped, and this wg waited for good.
        var result = await show;
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(0, (await ProcessRunner.WgAsync("show", name, "listen-port")).ExitCode);
        string log = await daemon.WaitForLogAsync("accepting connections on");
        string said = Assert.Single(log.Split('\n'), line => line.Contains("cannot accept a connection", StringComparison.Ordinal));
        Assert.Contains($"UAPI: cannot accept a connection on {daemon.SocketPath}: Too many open files (open-file limit ", said);
        Assert.Contains($"UAPI: accepting connections on {daemon.SocketPath} again (they failed with: Too many open files)", log);
    }

    [Fact]
    public async Task A_read_only_socket_directory_is_named_as_read_only()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = NewName("fzl");
        string directory = Path.GetDirectoryName(UapiSocketPath.For(name))!;
        // A private mount namespace: the host's directory stays writable.
        await using var daemon = DaemonProcess.StartUnder(ns, name,
            ["unshare", "-m", "sh", "-c", $"mount --bind {directory} {directory} && mount -o remount,bind,ro {directory} && exec \"$@\"", "sh"], "-f", name);

        Assert.Equal(1, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        // Was: "cannot listen: Unknown socket error" (EROFS has no SocketError).
        Assert.Contains($"{UapiSocketPath.For(name)}: cannot listen: Read-only file system (errno 30)", await daemon.Stderr);
        Assert.False(await ns.HasLinkAsync(name));
    }
}
