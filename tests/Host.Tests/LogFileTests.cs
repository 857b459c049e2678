using System.Text;
using System.Text.Json;
using Firezone.Actors.Host.Logging;
using Serilog.Core;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The JSON-lines log file under what happens to log files: logrotate's copytruncate (`truncate
/// -s 0` while the daemon writes) and a second writer on the same file. Every byte must belong to
/// a whole JSON line: no NUL bytes (a writer still at its old offset after a truncation leaves a
/// hole that reads as NULs) and no line overwritten by another writer. And what the actors write
/// there: named properties an operator can select on.
/// </summary>
[Collection(ProcessUmaskCollection.Name)]
public sealed class LogFileTests
{
    private static Logger FileLogger(string path) =>
        SerilogSetup.Create(new LogOptions { FilePath = path, Console = false });

    private static string TempLog() => Path.Combine(Path.GetTempPath(), $"fzt-{Guid.NewGuid():N}.log");

    /// <summary>Asserts the file is whole JSON lines (no NUL) and returns their messages.</summary>
    private static List<string> Messages(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(-1, Array.IndexOf(bytes, (byte)0));
        var messages = new List<string>();
        string text = Encoding.UTF8.GetString(bytes);
        Assert.True(text.Length == 0 || text.EndsWith('\n'), "the file ends inside a line");
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var json = JsonDocument.Parse(line);
            messages.Add(json.RootElement.GetProperty("message").GetString()!);
        }
        return messages;
    }

    /// <summary>What this process's descriptors refer to.</summary>
    private static List<string> OpenFiles()
    {
        var targets = new List<string>();
        foreach (string fd in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                targets.Add(new FileInfo(fd).LinkTarget ?? "");
            }
            catch (IOException)
            {
                // Closed while we looked.
            }
        }
        return targets;
    }

    private static async Task TruncateAsync(string path)
    {
        var truncate = await ProcessRunner.RunAsync("truncate", ["-s", "0", path], timeout: TimeSpan.FromSeconds(10));
        Assert.True(truncate.ExitCode == 0, truncate.Stderr);
    }

    /// <summary>
    /// The daemon creates a missing log directory (the default /var/log/firezone-tunnel under
    /// wg-quick) 0755 whatever its umask: it was 0777 under umask 0, and a user who may write there
    /// replaces the log with a symlink whose target the root daemon then appends to.
    /// </summary>
    [Fact]
    public void A_missing_log_directory_is_created_writable_by_root_only_under_a_permissive_umask()
    {
        string parent = Directory.CreateTempSubdirectory("fz-logdir-").FullName;
        string path = Path.Combine(parent, "log", "fzl0.log");
        var previous = Tmds.Linux.LibC.umask(0);
        try
        {
            FileLogger(path).Dispose();
            Tmds.Linux.LibC.umask(previous);
            Assert.Equal((UnixFileMode)0x1ed, File.GetUnixFileMode(Path.GetDirectoryName(path)!)); // 0755
        }
        finally
        {
            Tmds.Linux.LibC.umask(previous);
            Directory.Delete(parent, recursive: true);
        }
    }

    [Fact]
    public async Task After_a_truncation_the_next_line_starts_the_file()
    {
        string path = TempLog();
        try
        {
            using var logger = FileLogger(path);
            for (int i = 0; i < 100; i++)
            {
                logger.Information("before {Index}", i);
            }
            Assert.Equal(100, Messages(path).Count);
            await TruncateAsync(path);
            for (int i = 0; i < 3; i++)
            {
                logger.Information("after {Index}", i);
            }
            Assert.Equal(["after 0", "after 1", "after 2"], Messages(path));
            // Peers' keys and endpoints: not for every local user (wg show needs root).
            int umask = Convert.ToInt32(File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("Umask:", StringComparison.Ordinal))[6..].Trim(), 8);
            Assert.Equal((UnixFileMode)(0b110_100_000 & ~umask), File.GetUnixFileMode(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Truncating_while_the_logger_writes_leaves_only_whole_json_lines()
    {
        string path = TempLog();
        try
        {
            using var logger = FileLogger(path);
            using var stop = new CancellationTokenSource();
            int written = 0;
            var writer = Task.Run(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    logger.Information("line {Index} {Padding}", written, new string('x', 200));
                    Volatile.Write(ref written, written + 1);
                }
            });
            // Each truncation (and the end) only once the writer has written since the last: on a
            // loaded machine it may not have run at all yet.
            async Task WriterMovedOn()
            {
                int seen = Volatile.Read(ref written);
                await Task.Delay(20);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
                while (Volatile.Read(ref written) == seen && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(5);
                }
            }
            for (int i = 0; i < 20; i++)
            {
                await WriterMovedOn();
                await TruncateAsync(path);
            }
            await WriterMovedOn();
            await stop.CancelAsync();
            await writer;
            var messages = Messages(path);
            Assert.NotEmpty(messages);
            Assert.True(messages.Count < written, $"{messages.Count} of {written} lines: the file was never truncated");
            // The lines left are the last ones written, in order.
            Assert.Equal($"line {written - 1} {new string('x', 200)}", messages[^1]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Two_writers_on_one_file_keep_every_line()
    {
        string path = TempLog();
        try
        {
            const int Lines = 2000;
            using (var first = FileLogger(path))
            using (var second = FileLogger(path))
            {
                await Task.WhenAll(
                    Task.Run(() => { for (int i = 0; i < Lines; i++) { first.Information("first {Index}", i); } }),
                    Task.Run(() => { for (int i = 0; i < Lines; i++) { second.Information("second {Index}", i); } }));
            }
            // Disposing the loggers closed both descriptors.
            Assert.DoesNotContain(path, OpenFiles());
            var messages = Messages(path);
            Assert.Equal(2 * Lines, messages.Count);
            Assert.Equal(Enumerable.Range(0, Lines).Select(i => $"first {i}"), messages.Where(m => m.StartsWith("first", StringComparison.Ordinal)));
            Assert.Equal(Enumerable.Range(0, Lines).Select(i => $"second {i}"), messages.Where(m => m.StartsWith("second", StringComparison.Ordinal)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// The shipped logrotate file (packaging/firezone-tunnel.logrotate) covers the unit's and
    /// wg-quick's log files, and rotating with it, twice, while the daemon's logger keeps its file
    /// open leaves whole lines everywhere: the old lines in the rotated file, the next ones at the
    /// start of the live file.
    /// </summary>
    [Fact]
    public async Task The_packaged_logrotate_file_rotates_a_log_the_daemon_keeps_open()
    {
        string shipped = File.ReadAllText(RepositoryFile.Find("packaging/firezone-tunnel.logrotate"));
        const string Glob = LogOptions.DefaultDirectory + "/*.log {";
        Assert.Contains("\n" + Glob + "\n", shipped);
        Assert.Contains("--log-file " + LogOptions.DefaultDirectory + "/%i.log", File.ReadAllText(RepositoryFile.Find("packaging/firezone-tunnel@.service")));

        var directory = Directory.CreateTempSubdirectory("fzt-rotate");
        try
        {
            string path = Path.Combine(directory.FullName, "wg0.log");
            string config = Path.Combine(directory.FullName, "logrotate.conf");
            File.WriteAllText(config, shipped.Replace(Glob, directory.FullName + "/*.log {", StringComparison.Ordinal));
            string[] rotate = ["-f", "-s", Path.Combine(directory.FullName, "state"), config];
            using var logger = FileLogger(path);
            for (int i = 0; i < 100; i++)
            {
                logger.Information("before {Index}", i);
            }

            var first = await ProcessRunner.RunAsync("logrotate", rotate, timeout: TimeSpan.FromSeconds(30));
            Assert.True(first.ExitCode == 0, first.Stderr);
            Assert.Equal(Enumerable.Range(0, 100).Select(i => $"before {i}"), Messages(path + ".1"));
            Assert.Empty(Messages(path));
            for (int i = 0; i < 3; i++)
            {
                logger.Information("after {Index}", i);
            }
            Assert.Equal(["after 0", "after 1", "after 2"], Messages(path));

            // The next rotation compresses the one before (delaycompress) and the logger goes on.
            var second = await ProcessRunner.RunAsync("logrotate", rotate, timeout: TimeSpan.FromSeconds(30));
            Assert.True(second.ExitCode == 0, second.Stderr);
            Assert.Equal(["after 0", "after 1", "after 2"], Messages(path + ".1"));
            Assert.True(File.Exists(path + ".2.gz"), string.Join(", ", Directory.GetFiles(directory.FullName)));
            logger.Information("last");
            Assert.Equal(["last"], Messages(path));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A rotation by rename (logrotate without copytruncate, its default `create`; `mv` and a new
    /// file by hand) or a removed log: the daemon went on writing to the renamed file (after a
    /// compressing rotation, to a deleted one, whose space is never freed) and left the path empty
    /// or missing for the rest of its life (soak review, 2026-11-29). The next line after the
    /// recheck interval goes to the file at the path again, created 0640 as at start if missing.
    /// </summary>
    [Fact]
    public void After_a_rotation_by_rename_or_a_removal_the_next_lines_go_to_the_path_again()
    {
        string path = TempLog();
        try
        {
            using (var file = AppendOnlyFileSink.Open(path, JsonLogFormat.Create()))
            using (var logger = new Serilog.LoggerConfiguration().WriteTo.Sink(file).CreateLogger())
            {
                file.RecheckInterval = TimeSpan.Zero;
                logger.Information("before");
                File.Move(path, path + ".1");
                File.WriteAllText(path, "");
                logger.Information("after the rename");
                Assert.Equal(["before"], Messages(path + ".1"));
                Assert.Equal(["after the rename"], Messages(path));

                File.Delete(path);
                logger.Information("after the removal");
                Assert.Equal(["after the removal"], Messages(path));
                int umask = Convert.ToInt32(File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("Umask:", StringComparison.Ordinal))[6..].Trim(), 8);
                Assert.Equal((UnixFileMode)(0b110_100_000 & ~umask), File.GetUnixFileMode(path));
                // The renamed file's descriptor is closed, not kept: no deleted file held open.
                Assert.DoesNotContain(OpenFiles(), target => target.StartsWith(path, StringComparison.Ordinal) && target != path);
            }
            Assert.Equal(["before"], Messages(path + ".1"));
        }
        finally
        {
            File.Delete(path);
            File.Delete(path + ".1");
        }
    }

    [Fact]
    public void A_log_file_that_cannot_be_opened_is_one_line_naming_it()
    {
        // A directory where the file should be: open(2) fails with EISDIR, even for root.
        var directory = Directory.CreateTempSubdirectory("fzt-log");
        try
        {
            var e = Assert.Throws<IOException>(() => FileLogger(directory.FullName).Dispose());
            Assert.Equal($"{directory.FullName}: cannot open the log file: Is a directory", e.Message);
        }
        finally
        {
            directory.Delete();
        }
    }

    /// <summary>
    /// A symbolic link at --log-file's path (planted in a directory others may write to, /tmp say)
    /// is refused: the root daemon appended to whatever it pointed at. The link's target, there or
    /// not, is left alone, and the one line names the path and says it is a symbolic link.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_symbolic_link_at_the_log_files_path_is_refused_and_its_target_left_alone(bool targetExists)
    {
        var directory = Directory.CreateTempSubdirectory("fzt-loglink");
        try
        {
            string target = Path.Combine(directory.FullName, "target");
            if (targetExists)
            {
                File.WriteAllText(target, "precious\n");
            }
            string link = Path.Combine(directory.FullName, "fzl0.log");
            File.CreateSymbolicLink(link, target);
            var e = Assert.Throws<IOException>(() => FileLogger(link).Dispose());
            Assert.Equal($"{link}: cannot open the log file: it is a symbolic link, which the daemon does not write through (give the path of the file itself)", e.Message);
            Assert.Equal(targetExists, File.Exists(target));
            if (targetExists)
            {
                Assert.Equal("precious\n", File.ReadAllText(target));
            }
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A FIFO at the log's path made the open wait for a reader for ever (the daemon never started)
    /// and then wrote the log into the pipe: refused at once as not a regular file. A character
    /// device is taken (--log-file /dev/null, for no log file).
    /// </summary>
    [Fact]
    public async Task A_log_path_that_is_not_a_regular_file_is_refused_at_once()
    {
        var directory = Directory.CreateTempSubdirectory("fzt-logfifo");
        try
        {
            string fifo = Path.Combine(directory.FullName, "fzl0.log");
            var made = await ProcessRunner.RunAsync("mkfifo", [fifo], timeout: TimeSpan.FromSeconds(10));
            Assert.True(made.ExitCode == 0, made.Stderr);
            var open = Task.Run(() => FileLogger(fifo).Dispose());
            Assert.Same(open, await Task.WhenAny(open, Task.Delay(TimeSpan.FromSeconds(10))));
            var e = await Assert.ThrowsAsync<IOException>(() => open);
            Assert.Equal($"{fifo}: cannot open the log file: it is a FIFO, not a regular file", e.Message);
            using (var devNull = FileLogger("/dev/null"))
            {
                devNull.Information("nowhere");
            }
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A log file that cannot be written (a full /var/log) was silent: Serilog swallows a sink's
    /// exception (its SelfLog is off), so the file stopped growing and nothing said why. The first
    /// failed line is said once on stderr (the journal under the unit, whose lines go on); once
    /// writing works again, stderr says so and the file itself gets a Warning with how many lines it
    /// lacks, so a reader of the file with jq sees the gap. The file's descriptor is pointed at
    /// /dev/full (every write ENOSPC) and back with dup2, as a disk fills and is cleared.
    /// </summary>
    [Fact]
    public unsafe void A_log_file_that_cannot_be_written_is_said_on_stderr_and_the_gap_in_the_file()
    {
        string path = TempLog();
        var problems = new StringWriter();
        int full = -1, saved = -1;
        try
        {
            using (var file = AppendOnlyFileSink.Open(path, JsonLogFormat.Create(), problems))
            using (var logger = new Serilog.LoggerConfiguration().WriteTo.Sink(file).CreateLogger())
            {
                logger.Information("before");
                int fd = DescriptorOf(path);
                fixed (byte* devFull = "/dev/full\0"u8)
                {
                    full = Tmds.Linux.LibC.open(devFull, Tmds.Linux.LibC.O_WRONLY | Tmds.Linux.LibC.O_CLOEXEC, 0);
                }
                saved = Tmds.Linux.LibC.dup(fd);
                Assert.True(full >= 0 && saved >= 0);
                Assert.Equal(fd, Tmds.Linux.LibC.dup2(full, fd));
                logger.Information("lost one");
                logger.Information("lost two");
                Assert.Equal(fd, Tmds.Linux.LibC.dup2(saved, fd));
                logger.Information("after");
            }
            Assert.Equal(["before", "2 log line(s) were not written to this file: No space left on device", "after"], Messages(path));
            Assert.Equal(
                $"firezone-tunnel: {path}: cannot write the log: No space left on device; its lines are lost until a write succeeds\n"
                + $"firezone-tunnel: {path}: writing the log again; 2 line(s) were lost\n",
                problems.ToString().Replace("\r\n", "\n", StringComparison.Ordinal));
        }
        finally
        {
            _ = full >= 0 ? Tmds.Linux.LibC.close(full) : 0;
            _ = saved >= 0 ? Tmds.Linux.LibC.close(saved) : 0;
            File.Delete(path);
        }
    }

    /// <summary>The descriptor of this process open on <paramref name="path"/> (exactly one).</summary>
    private static int DescriptorOf(string path)
    {
        var found = new List<int>();
        foreach (string fd in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget == path)
                {
                    found.Add(int.Parse(Path.GetFileName(fd), System.Globalization.CultureInfo.InvariantCulture));
                }
            }
            catch (IOException)
            {
                // Closed while we looked.
            }
        }
        return Assert.Single(found);
    }

    /// <summary>
    /// The actors log through Akka's ILoggingAdapter and Akka.Logger.Serilog: their named holes
    /// must reach the JSON line as properties of those names (positional holes came out as "0",
    /// "1", ...), and the message reads as before. The real daemon in a namespace of the test's own.
    /// </summary>
    [Fact]
    public async Task An_actor_log_line_carries_its_named_properties_in_the_json_log()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = "fzl" + Guid.NewGuid().ToString("N")[..8];
        await using var daemon = DaemonProcess.Start(ns, name, "-f", "--log-level", "debug", name);
        await daemon.WaitReadyAsync();
        string keyFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.key");
        string peer = TestKeys.New().ToBase64();
        try
        {
            await File.WriteAllTextAsync(keyFile, TestKeys.New().ToBase64());
            var set = await ProcessRunner.WgAsync("set", name, "private-key", keyFile, "listen-port", "0",
                "peer", peer, "allowed-ips", "10.44.0.0/24", "endpoint", "127.0.0.1:9", "persistent-keepalive", "1");
            Assert.True(set.ExitCode == 0, set.Stderr);
            // The keepalive starts a handshake: its initiation is logged on the socket's I/O thread.
            for (var waited = System.Diagnostics.Stopwatch.StartNew(); waited.Elapsed < TimeSpan.FromSeconds(10)
                && !(await File.ReadAllTextAsync(daemon.LogFile)).Contains("sending handshake initiation", StringComparison.Ordinal);)
            {
                await Task.Delay(50);
            }
            const int SIGTERM = 15;
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(10)));

            var lines = new List<JsonElement>();
            foreach (string text in await File.ReadAllLinesAsync(daemon.LogFile))
            {
                using var json = JsonDocument.Parse(text);
                lines.Add(json.RootElement.Clone());
                Assert.False(json.RootElement.TryGetProperty("0", out _), text);
            }
            static string Message(JsonElement line) => line.GetProperty("message").GetString()!;
            var added = Assert.Single(lines, l => Message(l).StartsWith($"peer {peer} added", StringComparison.Ordinal));
            Assert.Equal(peer, added.GetProperty("PublicKey").GetString());
            Assert.Equal(1, added.GetProperty("AllowedIpCount").GetInt32());
            Assert.Equal("127.0.0.1:9", added.GetProperty("Endpoint").GetString());
            string ecn = added.GetProperty("EcnMode").GetString()!;
            Assert.Equal($"peer {peer} added (1 allowed IPs, endpoint 127.0.0.1:9, ECN {ecn})", Message(added));
            // Every line about the peer (at debug also its handshake initiations) names it the same way.
            Assert.All(lines.Where(l => Message(l).StartsWith($"peer {peer}", StringComparison.Ordinal)),
                l => Assert.Equal(peer, l.GetProperty("PublicKey").GetString()));
            // And by the actor it belongs to, also a line written on an I/O thread, which
            // Akka.Logger.Serilog took for dead letters (its ActorPath is the sender of the log event).
            Assert.Contains(lines, l => Message(l).StartsWith($"peer {peer}: sending handshake initiation", StringComparison.Ordinal));
            Assert.All(lines.Where(l => l.TryGetProperty("ActorPath", out _)),
                l => Assert.DoesNotContain("deadLetters", l.GetProperty("ActorPath").GetString()));
            var changed = Assert.Single(lines, l => Message(l).StartsWith("peers changed:", StringComparison.Ordinal));
            Assert.Equal(1, changed.GetProperty("Added").GetInt32());
            Assert.Equal(1, changed.GetProperty("PeerCount").GetInt32());
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    /// <summary>
    /// A Gateway's service start with many peers logs them as one "peers changed" line, as a
    /// `wg setconf` of the same file to the drop-in daemon does (each peer at Debug). The start
    /// added the file's peers one request each, so a service with 1,000 peers wrote 1,000
    /// "peer ... added" lines at Information to the journal on every start, and no summary.
    /// </summary>
    [Fact]
    public async Task A_service_start_logs_its_peers_as_one_summary_line()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UapiServerFixture.UniqueName();
        string file = Path.Combine(Path.GetTempPath(), name + ".conf");
        var config = new StringBuilder($"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\nTable = off\n");
        for (int i = 0; i < 50; i++)
        {
            config.Append($"\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.31.0.{i}/32\n");
        }
        await File.WriteAllTextAsync(file, config.ToString());
        try
        {
            await using var daemon = DaemonProcess.Start(ns, name, "up", "--config", file);
            await daemon.WaitReadyAsync();
            static string Message(JsonElement line) => line.GetProperty("message").GetString()!;
            // The summary comes from the peers' actor through Akka's log bus, which may write it a
            // moment after the daemon said it was ready: read until it is there (10 s at most).
            var lines = new List<JsonElement>();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            do
            {
                lines.Clear();
                foreach (string text in await File.ReadAllLinesAsync(daemon.LogFile))
                {
                    using var json = JsonDocument.Parse(text);
                    lines.Add(json.RootElement.Clone());
                }
                if (lines.Exists(l => Message(l).StartsWith("peers changed:", StringComparison.Ordinal)))
                {
                    break;
                }
                await Task.Delay(50);
            }
            while (DateTime.UtcNow < deadline);
            Assert.DoesNotContain(lines, l => Message(l).StartsWith("peer ", StringComparison.Ordinal) && Message(l).Contains(" added (", StringComparison.Ordinal));
            var changed = Assert.Single(lines, l => Message(l).StartsWith("peers changed:", StringComparison.Ordinal));
            Assert.Equal("Information", changed.GetProperty("severity").GetString());
            Assert.Equal(50, changed.GetProperty("Added").GetInt32());
            Assert.Equal(50, changed.GetProperty("PeerCount").GetInt32());
            var status = await ns.ExecAsync("wg", ["show", name, "peers"], timeout: TimeSpan.FromSeconds(10));
            Assert.Equal(50, status.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// Standard output that is neither a terminal nor the journal carries the same JSON lines as
    /// the file, so `firezone-tunnel -f wg0 --log-level debug | jq` reads every line, the stop's
    /// included: at debug, Akka's stand-in stdout logger, which it starts while it stops its
    /// loggers, wrote "[DEBUG][...][EventStream] Shutting down: StandardOutLogger started" there.
    /// </summary>
    [Fact]
    public async Task Every_stdout_line_at_debug_is_json_through_the_stop()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        // What the logger actor has not written when Akka stops it is a race: a few stops.
        for (int round = 0; round < 4; round++)
        {
            string name = "fzl" + Guid.NewGuid().ToString("N")[..8];
            await using var daemon = DaemonProcess.Start(ns, name, "-f", "--log-level", "debug", name);
            await daemon.WaitReadyAsync();
            const int SIGTERM = 15;
            daemon.Signal(SIGTERM);
            Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(10)));

            string stdout = await daemon.Stdout;
            Assert.Contains("Interface " + name + " stopped", stdout, StringComparison.Ordinal);
            foreach (string line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                Assert.True(line.StartsWith('{'), $"not a JSON line on stdout (round {round}): {line}");
                using var json = JsonDocument.Parse(line);
                Assert.True(json.RootElement.TryGetProperty("severity", out _), line);
            }
        }
    }
}
