using System.Globalization;
using System.Text.Json;
using Firezone.Actors.Host.Logging;
using Firezone.Actors.Host.Uapi;
using Serilog.Events;
using Serilog.Formatting.Display;
using Serilog.Parsing;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// What the daemon writes when its stdout and stderr are the systemd journal (JOURNAL_STREAM names
/// them): each line with its syslog priority prefix, so that journald records a Warning as a warning
/// and a configuration mistake as an error. Found under systemd 252 (scripts/lab/systemd-unit.sh):
/// before, the journal had JSON objects, every one at priority info, and
/// <c>journalctl -p err -u firezone-tunnel@wg0</c> did not show a failed start's FILE:LINE line.
/// </summary>
public sealed class JournalOutputTests
{
    private static readonly string Executable = Path.Combine(AppContext.BaseDirectory, "firezone-tunnel");

    /// <summary>The file's DEVICE:INODE as systemd writes JOURNAL_STREAM, by stat(1) rather than our own code.</summary>
    private static async Task<string> DeviceAndInodeAsync(string path)
    {
        var stat = await ProcessRunner.RunAsync("stat", ["-c", "%d:%i", path], timeout: TimeSpan.FromSeconds(10));
        Assert.True(stat.ExitCode == 0, stat.Stderr);
        return stat.Stdout.Trim();
    }

    [Fact]
    public async Task The_journal_stream_is_recognised_by_the_descriptor_it_names_only()
    {
        string path = Path.Combine(Path.GetTempPath(), $"fzt-journal-{Guid.NewGuid():N}");
        string other = path + "-other";
        await File.WriteAllTextAsync(path, "");
        await File.WriteAllTextAsync(other, "");
        try
        {
            string value = await DeviceAndInodeAsync(path);
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
            int fd = (int)handle.DangerousGetHandle();
            Assert.True(JournalStream.Matches(value, fd));
            // Inherited by a program whose output goes elsewhere: not the journal.
            Assert.False(JournalStream.Matches(await DeviceAndInodeAsync(other), fd));
            Assert.False(JournalStream.Matches(null, fd));
            Assert.False(JournalStream.Matches("", fd));
            Assert.False(JournalStream.Matches(value.Split(':')[1], fd));
            Assert.False(JournalStream.Matches(" " + value, fd));
            Assert.False(JournalStream.Matches(value + ":1", fd));
            Assert.False(JournalStream.Matches(value, -1));
        }
        finally
        {
            File.Delete(path);
            File.Delete(other);
        }
    }

    private static string Format(LogEventLevel level, Exception? exception, string template, params LogEventProperty[] properties)
    {
        var output = new StringWriter(CultureInfo.InvariantCulture);
        new JournalLogFormat().Format(new LogEvent(DateTimeOffset.UtcNow, level, exception, new MessageTemplateParser().Parse(template), properties), output);
        return output.ToString();
    }

    [Fact]
    public void Every_line_carries_the_level_as_a_syslog_priority_and_no_time_stamp()
    {
        Assert.Equal("<6>peer abc added (3 allowed IPs)\n",
            Format(LogEventLevel.Information, null, "peer {Key} added ({Count} allowed IPs)", new LogEventProperty("Key", new ScalarValue("abc")), new LogEventProperty("Count", new ScalarValue(3))));
        Assert.Equal("<4>wg0.conf:3: DNS is not applied\n", Format(LogEventLevel.Warning, null, "wg0.conf:3: DNS is not applied"));
        Assert.Equal("<7>x\n", Format(LogEventLevel.Debug, null, "x"));
        Assert.Equal("<7>x\n", Format(LogEventLevel.Verbose, null, "x"));
        Assert.Equal("<2>x\n", Format(LogEventLevel.Fatal, null, "x"));

        // A stack trace is an error too, line by line: journald reads the priority per line.
        Exception thrown;
        try
        {
            throw new InvalidOperationException("first\nsecond");
        }
        catch (InvalidOperationException e)
        {
            thrown = e;
        }
        string[] lines = Format(LogEventLevel.Error, thrown, "Unexpected failure while starting").Split('\n');
        Assert.Equal("", lines[^1]);
        Assert.True(lines.Length > 4, string.Join('\n', lines));
        Assert.Equal("<3>Unexpected failure while starting", lines[0]);
        Assert.Equal("<3>System.InvalidOperationException: first", lines[1]);
        Assert.Equal("<3>second", lines[2]);
        Assert.All(lines[..^1], line => Assert.StartsWith("<3>", line));
    }

    [Fact]
    public void Standard_error_lines_are_errors_however_they_are_written()
    {
        var inner = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        var writer = new JournalErrorWriter(inner) { NewLine = "\n" };
        writer.WriteLine("a.conf:2: problem");
        writer.Write("firezone-tunnel: ");
        writer.Write("two ");
        writer.Write('p');
        writer.WriteLine("arts");
        writer.Write("x\ny\n");
        Assert.Equal("<3>a.conf:2: problem\n<3>firezone-tunnel: two parts\n<3>x\n<3>y\n", inner.ToString());
    }

    [Fact]
    public void A_line_that_names_its_priority_keeps_it()
    {
        var inner = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        var writer = new JournalErrorWriter(inner) { NewLine = "\n" };
        writer.WriteLine("<4>firezone-tunnel: a notice");
        writer.WriteLine("firezone-tunnel: a failure");
        writer.WriteLine("<9>not a priority");
        Assert.Equal("<4>firezone-tunnel: a notice\n<3>firezone-tunnel: a failure\n<3><9>not a priority\n", inner.ToString());
    }

    [Fact]
    public async Task A_notice_on_standard_error_reaches_the_journal_as_a_warning_and_the_failure_as_an_error()
    {
        string name = UapiServerFixture.UniqueName();
        string journal = Path.Combine(Path.GetTempPath(), $"fzt-journal-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(journal, "");
        try
        {
            // LOG_LEVEL with a word that is no level (a notice), then a log file that cannot be
            // created (a failure, before anything else is made).
            var environment = new Dictionary<string, string>
            {
                ["WG_PROCESS_FOREGROUND"] = "", ["LOG_LEVEL"] = "loud",
                [JournalStream.Variable] = await DeviceAndInodeAsync(journal),
            };
            var run = await ProcessRunner.RunAsync("sh", ["-c", "out=$1; shift; exec \"$@\" >>\"$out\" 2>&1", "sh", journal, Executable, "-f", name, "--log-file", "/proc/nonexistent/x.log"],
                environment: environment, timeout: TimeSpan.FromSeconds(30));
            Assert.Equal(Cli.CommandLine.ConfigMistakeExitCode, run.ExitCode);
            string[] lines = (await File.ReadAllTextAsync(journal)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2, lines.Length);
            Assert.StartsWith("<4>firezone-tunnel: LOG_LEVEL 'loud' is not", lines[0]);
            Assert.StartsWith("<3>firezone-tunnel: /proc/nonexistent/x.log: ", lines[1]);
            Assert.False(File.Exists(UapiSocketPath.For(name)));
        }
        finally
        {
            File.Delete(journal);
        }
    }

    /// <summary>The executable itself, as systemd starts it: stdout and stderr one stream, named by JOURNAL_STREAM.</summary>
    private static async Task<(int ExitCode, string Output)> RunWithOutputToAsync(string output, string? journalStream, params string[] arguments)
    {
        var environment = new Dictionary<string, string> { ["WG_PROCESS_FOREGROUND"] = "" };
        if (journalStream is not null)
        {
            environment[JournalStream.Variable] = journalStream;
        }
        var run = await ProcessRunner.RunAsync("sh", ["-c", "out=$1; shift; exec \"$@\" >>\"$out\" 2>&1", "sh", output, Executable, .. arguments],
            environment: environment, timeout: TimeSpan.FromSeconds(30));
        return (run.ExitCode, await File.ReadAllTextAsync(output));
    }

    [Fact]
    public async Task A_config_mistake_reaches_the_journal_as_an_error_and_elsewhere_unchanged()
    {
        string name = UapiServerFixture.UniqueName();
        string config = Path.Combine(Path.GetTempPath(), name + ".conf");
        string journal = Path.Combine(Path.GetTempPath(), $"fzt-journal-{Guid.NewGuid():N}");
        string file = journal + "-file";
        await File.WriteAllTextAsync(config, $"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n\n[Peer]\nPublicKey = {TestKeys.New().ToBase64()}\nAllowedIPs = 10.0.0.0/99\n");
        await File.WriteAllTextAsync(journal, "");
        await File.WriteAllTextAsync(file, "");
        try
        {
            string expected = $"firezone-tunnel: {config}:6: AllowedIPs: an entry is not a CIDR prefix (address/length)\n";
            var (exitCode, output) = await RunWithOutputToAsync(journal, await DeviceAndInodeAsync(journal), "up", "--config", config);
            Assert.Equal(Cli.CommandLine.ConfigMistakeExitCode, exitCode);
            Assert.Equal("<3>" + expected, output);

            // JOURNAL_STREAM inherited, output elsewhere: the line as before.
            (exitCode, output) = await RunWithOutputToAsync(file, await DeviceAndInodeAsync(journal), "up", "--config", config);
            Assert.Equal(Cli.CommandLine.ConfigMistakeExitCode, exitCode);
            Assert.Equal(expected, output);
        }
        finally
        {
            File.Delete(config);
            File.Delete(journal);
            File.Delete(file);
        }
    }

    [Flags]
    private enum Offloads
    {
        None = 0,
        VnetHeader = 1,
        Tso = 2,
    }

    private enum EcnMode
    {
        Normal,
    }

    /// <summary>
    /// <c>systemctl status</c>, <c>journalctl</c> and a terminal show the same message as the log
    /// file's <c>message</c>. Before, they rendered enum values as JSON strings, so the journal said
    /// <c>ECN "Normal"</c> and <c>offloads "VnetHeader, Tso"</c> where the file said
    /// <c>ECN Normal</c> and <c>offloads VnetHeader, Tso</c>.
    /// </summary>
    [Fact]
    public void Journal_and_terminal_lines_say_what_the_log_files_message_says()
    {
        const string template = "peer {PublicKey} added ({Count} allowed IPs, ECN {EcnMode}, offloads {Offloads})";
        var logEvent = new LogEvent(DateTimeOffset.UtcNow, LogEventLevel.Information, null, new MessageTemplateParser().Parse(template),
        [
            new LogEventProperty("PublicKey", new ScalarValue("abc=")),
            new LogEventProperty("Count", new ScalarValue(2)),
            new LogEventProperty("EcnMode", new ScalarValue(EcnMode.Normal)),
            new LogEventProperty("Offloads", new ScalarValue(Offloads.VnetHeader | Offloads.Tso)),
        ]);
        var file = new StringWriter(CultureInfo.InvariantCulture);
        JsonLogFormat.Create().Format(logEvent, file);
        string message = JsonDocument.Parse(file.ToString()).RootElement.GetProperty("message").GetString()!;
        Assert.Equal("peer abc= added (2 allowed IPs, ECN Normal, offloads VnetHeader, Tso)", message);

        var journal = new StringWriter(CultureInfo.InvariantCulture);
        new JournalLogFormat().Format(logEvent, journal);
        Assert.Equal("<6>" + message + "\n", journal.ToString());

        var terminal = new StringWriter(CultureInfo.InvariantCulture);
        new MessageTemplateTextFormatter(SerilogSetup.HumanTemplate, CultureInfo.InvariantCulture).Format(logEvent, terminal);
        Assert.EndsWith(" INF " + message + Environment.NewLine, terminal.ToString());
    }
}
