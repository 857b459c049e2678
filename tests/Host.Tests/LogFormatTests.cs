using System.Text.Json;
using Firezone.Actors.Host.Logging;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// <c>--log-format</c> (and FIREZONE_LOG_FORMAT). Found by the container review: `kubectl logs`
/// merges a container's stdout and stderr, and the one plain-text notice on stderr (the default log
/// file unwritable, as on a read-only root) was the line jq could not parse. With json every line
/// of both streams is a JSON object and the notice is said once.
/// </summary>
public sealed class LogFormatTests
{
    private static readonly string Executable = Path.Combine(AppContext.BaseDirectory, "firezone-tunnel");

    private static string UniqueName() => "fzj" + Guid.NewGuid().ToString("N")[..8];

    private static List<JsonElement> JsonLines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            try
            {
                return JsonDocument.Parse(line).RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new Xunit.Sdk.XunitException($"not a JSON line: {line} ({e.Message})");
            }
        }).ToList();

    [Fact]
    public void Each_line_on_stderr_becomes_one_object_with_the_logs_fields()
    {
        var output = new StringWriter { NewLine = "\n" };
        var clock = new FixedClock(new DateTimeOffset(2026, 11, 29, 8, 0, 0, TimeSpan.Zero));
        var writer = new JsonErrorWriter(output, clock);
        writer.WriteLine("firezone-tunnel: /etc/wireguard/wg0.conf:3: 'Adress' is not a key (did you mean Address?)");
        // A notice (JournalErrorWriter.NoticeLine's prefix), written in pieces as TextWriter may.
        writer.Write("<4>firezone-tunnel: cannot resolve the host name ");
        writer.Write("gw.example: trying again in 1.00 s\r\n");
        writer.Write("a line \"quoted\" and\tä tab, no end yet");
        writer.Flush();

        var lines = JsonLines(output.ToString());
        Assert.Equal(3, lines.Count);
        Assert.Equal("2026-11-29T08:00:00.0000000Z", lines[0].GetProperty("time").GetString());
        Assert.Equal("Error", lines[0].GetProperty("severity").GetString());
        Assert.Equal("/etc/wireguard/wg0.conf:3: 'Adress' is not a key (did you mean Address?)", lines[0].GetProperty("message").GetString());
        Assert.Equal("Warning", lines[1].GetProperty("severity").GetString());
        Assert.Equal("cannot resolve the host name gw.example: trying again in 1.00 s", lines[1].GetProperty("message").GetString());
        Assert.Equal("a line \"quoted\" and\tä tab, no end yet", lines[2].GetProperty("message").GetString());
        // Readable as text too: apostrophes and letters are not escaped.
        Assert.Contains("'Adress'", output.ToString());
        Assert.Contains("ä", output.ToString());
    }

    [Theory]
    [InlineData(new[] { "--log-format", "json", "wg0" }, null, true)]
    [InlineData(new[] { "up", "--log-format=json", "wg0" }, null, true)]
    [InlineData(new[] { "up", "--log-format:JSON", "wg0" }, null, true)]
    [InlineData(new[] { "wg0" }, "json", true)]
    [InlineData(new[] { "--log-format", "text", "wg0" }, "json", false)]
    [InlineData(new[] { "wg0" }, null, false)]
    [InlineData(new[] { "wg0" }, "auto", false)]
    [InlineData(new[] { "--", "--log-format", "json" }, null, false)]
    [InlineData(new[] { "--log-format" }, null, false)]
    public void Stderr_is_json_when_the_option_or_the_variable_says_json(string[] arguments, string? variable, bool expected) =>
        Assert.Equal(expected, LogFormats.StandardErrorIsJson(arguments, variable));

    [Fact]
    public async Task A_format_that_is_none_of_the_three_is_a_usage_error()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        var result = await ns.ExecAsync(Executable, ["-f", "--log-format", "yaml", name],
            environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" }, timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("firezone-tunnel: --log-format (or FIREZONE_LOG_FORMAT) 'yaml' is not auto, json or text (see --help)\n", result.Stderr);
        Assert.False(File.Exists(UapiSocketPath.For(name)));

        // The variable left empty in a container's spec is the default, as LOG_LEVEL's.
        // (The empty --log-file after it is the next thing refused, so the run ends there.)
        var empty = await ns.ExecAsync(Executable, ["-f", "--log-file", "", name],
            environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "", [LogFormats.Variable] = "" }, timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(2, empty.ExitCode);
        Assert.Equal("firezone-tunnel: --log-file is empty: give the log file's path (see --help)\n", empty.Stderr);
    }

    [Fact]
    public async Task A_mistake_in_the_file_is_a_json_line_on_stderr()
    {
        var (result, path) = await UpUnderJsonVariableAsync("Adress = 10.0.0.1/24");
        Assert.Equal(78, result.ExitCode);
        var line = Assert.Single(JsonLines(result.Stderr));
        Assert.Equal("Error", line.GetProperty("severity").GetString());
        Assert.StartsWith($"{path}:3: ", line.GetProperty("message").GetString());
        Assert.Equal("", result.Stdout);
    }

    /// <summary>
    /// <c>up OPTIONS FILE</c> with <see cref="LogFormats.Variable"/>=json, FILE an [Interface] with a
    /// private key (line 2) and <paramref name="line3"/>; the file is removed afterwards.
    /// </summary>
    private static async Task<(ProcessRunner.Result Result, string Path)> UpUnderJsonVariableAsync(string line3, params string[] options)
    {
        string path = Path.Combine(Path.GetTempPath(), $"{UniqueName()}.conf");
        await File.WriteAllTextAsync(path, "[Interface]\nPrivateKey = " + TestKeys.New().ToBase64() + "\n" + line3 + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            return (await ProcessRunner.RunAsync(Executable, ["up", .. options, path],
                environment: new Dictionary<string, string> { [LogFormats.Variable] = "json" }, timeout: TimeSpan.FromSeconds(30)), path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// Under json a failed start is said once: by the JSON console (stdout) when its level lets the
    /// event through, else on stderr. Under <c>--log-level silent</c> the console has nothing, and a
    /// stderr that also left it out (because the log "already has it") would say no word at all.
    /// </summary>
    [Theory]
    [InlineData("error", false)]
    [InlineData("silent", true)]
    public async Task A_failed_start_under_json_is_said_once_whatever_the_level(string level, bool onStandardError)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string path = Path.Combine(Path.GetTempPath(), $"{UniqueName()}.conf");
        await File.WriteAllTextAsync(path, "[Interface]\nPrivateKey = " + TestKeys.New().ToBase64() + "\nPreUp = false\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            var result = await ns.ExecAsync(Executable, ["up", "--log-format", "json", "--log-level", level, "--log-file", "/dev/null", path], timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(78, result.ExitCode);
            var said = Assert.Single(JsonLines(result.Stdout + result.Stderr), l => l.GetProperty("message").GetString()!.Contains($"{path}:3: PreUp failed", StringComparison.Ordinal));
            Assert.Equal("Error", said.GetProperty("severity").GetString());
            Assert.Equal("", onStandardError ? result.Stdout : result.Stderr);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// <c>up --check</c> (the unit's ExecReload) says the file's warnings on stderr: a warning, as
    /// a start logs them, not an Error (the journal's "&lt;3&gt;", which <c>journalctl -p err</c> shows
    /// as the reload's failure, although it succeeded).
    /// </summary>
    [Fact]
    public async Task Up_check_says_the_files_warnings_as_warnings()
    {
        var (result, path) = await UpUnderJsonVariableAsync("ListenPort = 51820\nListenPort = 51821", "--check");
        Assert.Equal(0, result.ExitCode);
        var line = Assert.Single(JsonLines(result.Stderr));
        Assert.Equal("Warning", line.GetProperty("severity").GetString());
        Assert.StartsWith($"{path}:4: ListenPort given twice", line.GetProperty("message").GetString());
        Assert.Equal("", result.Stdout);
    }

    /// <summary>
    /// The container review's case: a foreground daemon (PID 1 there) whose default log file cannot
    /// be written (a read-only tmpfs over /var/log in a mount namespace of the test's own), stdout
    /// and stderr pipes as a container runtime gives them. Stopped with SIGTERM by its PID.
    /// </summary>
    [Theory]
    [InlineData("json")]
    [InlineData("text")]
    [InlineData("auto")]
    public async Task A_daemon_without_its_log_file_writes_what_the_format_says(string format)
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string name = UniqueName();
        string pidFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.pid");
        try
        {
            var run = ns.ExecAsync("unshare", ["-m", "sh", "-c", $"mount -t tmpfs -o ro none /var/log && echo $$ > {pidFile} && exec {Executable} -f --log-format {format} {name}"],
                environment: new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" }, timeout: TimeSpan.FromSeconds(30));
            var result = await PidFileDaemon.StopOnceServingAsync(run, name, pidFile);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            const string Problem = "cannot create the log file's directory /var/log/firezone-tunnel: Read-only file system";
            string both = result.Stdout + result.Stderr;
            switch (format)
            {
                case "json":
                    // kubectl logs | jq: every line of both streams parses; the notice once, a Warning.
                    var lines = JsonLines(both);
                    Assert.Contains(lines, l => l.GetProperty("message").GetString()!.EndsWith("running interface " + name, StringComparison.Ordinal));
                    var notice = Assert.Single(lines, l => l.GetProperty("message").GetString()!.Contains(Problem, StringComparison.Ordinal));
                    Assert.Equal("Warning", notice.GetProperty("severity").GetString());
                    break;
                case "text":
                    // Human lines although stdout is a pipe; the notice also on stderr (another file).
                    Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} WRN Running without a log file: ", result.Stdout);
                    Assert.Contains(" INF firezone-tunnel ", result.Stdout);
                    Assert.Equal($"firezone-tunnel: /var/log/firezone-tunnel/{name}.log: {Problem}; running without a log file\n", result.Stderr);
                    break;
                default:
                    // As before: JSON on stdout (a pipe), the plain line on stderr.
                    Assert.All(JsonLines(result.Stdout), l => Assert.True(l.TryGetProperty("severity", out _)));
                    Assert.Equal($"firezone-tunnel: /var/log/firezone-tunnel/{name}.log: {Problem}; running without a log file\n", result.Stderr);
                    break;
            }
        }
        finally
        {
            File.Delete(pidFile);
            LeftoverFile.Delete(UapiSocketPath.For(name));
        }
    }

    /// <summary>
    /// Under a unit (stdout and stderr the journal, named by JOURNAL_STREAM) with --log-format json:
    /// each line keeps its syslog priority prefix, which journald takes off, so a failed start is
    /// still an error for <c>journalctl -p err</c> and <c>systemctl status</c> (the diff review:
    /// it was one JSON line at priority info). Both streams into one file, as systemd gives them.
    /// </summary>
    [Fact]
    public async Task Under_the_journal_json_lines_keep_their_priority()
    {
        await using var ns = await NetworkNamespace.CreateAsync();
        string path = Path.Combine(Path.GetTempPath(), $"{UniqueName()}.conf");
        string journal = Path.Combine(Path.GetTempPath(), $"fzt-journal-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(path, "[Interface]\nPrivateKey = " + TestKeys.New().ToBase64() + "\nPreUp = false\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await File.WriteAllTextAsync(journal, "");
        try
        {
            var stat = await ProcessRunner.RunAsync("stat", ["-c", "%d:%i", journal], timeout: TimeSpan.FromSeconds(10));
            var run = await ns.ExecAsync("sh", ["-c", "out=$1; shift; exec \"$@\" >>\"$out\" 2>&1", "sh", journal, Executable, "up", "--log-format", "json", "--log-file", "/dev/null", path],
                environment: new Dictionary<string, string> { [JournalStream.Variable] = stat.Stdout.Trim() }, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(78, run.ExitCode);
            string[] lines = (await File.ReadAllTextAsync(journal)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.NotEmpty(lines);
            Assert.All(lines, line => Assert.Matches(@"^<[0-7]>\{", line));
            var failure = Assert.Single(lines, l => l.Contains($"{path}:3: PreUp failed", StringComparison.Ordinal));
            Assert.StartsWith("<3>", failure);
            Assert.Equal("Error", JsonDocument.Parse(failure[3..]).RootElement.GetProperty("severity").GetString());
            Assert.Contains(lines, l => l.StartsWith("<6>", StringComparison.Ordinal));

            // A usage error, said before any logger, on stderr alone.
            await File.WriteAllTextAsync(journal, "");
            run = await ns.ExecAsync("sh", ["-c", "out=$1; shift; exec \"$@\" >>\"$out\" 2>&1", "sh", journal, Executable, "--log-format", "json", "--bogus"],
                environment: new Dictionary<string, string> { [JournalStream.Variable] = stat.Stdout.Trim() }, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(2, run.ExitCode);
            string usage = Assert.Single((await File.ReadAllTextAsync(journal)).Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("<3>{", usage);
            Assert.Equal("unknown option '--bogus' (see --help)", JsonDocument.Parse(usage[3..]).RootElement.GetProperty("message").GetString());
        }
        finally
        {
            File.Delete(path);
            File.Delete(journal);
        }
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
