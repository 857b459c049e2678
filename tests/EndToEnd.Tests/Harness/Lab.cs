using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace Firezone.Actors.EndToEnd.Tests.Harness;

/// <summary>
/// One lab (four namespaces with a unique prefix) made by scripts/lab/lab.sh for one test, with that
/// test's time budget: every command gets at most the time left, and the test fails with a
/// TimeoutException once the budget is spent. Dispose always runs `lab.sh down`, which stops every
/// process the lab started (by PID file) and deletes the namespaces.
/// </summary>
public sealed class Lab : IDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    private readonly ITestOutputHelper _output;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TimeSpan _budget;
    private readonly Dictionary<string, string> _environment = new();
    private int _nextPort = 5001;
    private bool _up;

    private Lab(ITestOutputHelper output, TimeSpan budget, int underlay)
    {
        _output = output;
        _budget = budget;
        Underlay = underlay;
        // A stem (LAB_PREFIX, default "fz": runs sharing a machine can each keep to their own names)
        // + 6 hex characters: at most 12, lab.sh's limit, so interface names "<prefix>-c" fit IFNAMSIZ.
        Prefix = Stem() + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();
        _environment["UNDERLAY"] = underlay.ToString(CultureInfo.InvariantCulture);
        Client = new TunnelSide(this, Roles.Client);
        Gateway = new TunnelSide(this, Roles.Gateway);
    }

    public string Prefix { get; }

    private static string Stem()
    {
        var stem = Environment.GetEnvironmentVariable("LAB_PREFIX");
        if (string.IsNullOrEmpty(stem))
        {
            return "fz";
        }
        return System.Text.RegularExpressions.Regex.IsMatch(stem, "^[a-z][a-z0-9-]{0,5}$")
            ? stem
            : throw new InvalidOperationException($"LAB_PREFIX '{stem}' must be 1-6 characters of [a-z0-9-], starting with a letter");
    }

    public int Underlay { get; }
    public TunnelSide Client { get; }
    public TunnelSide Gateway { get; }
    public string StateDirectory => Path.Combine(Environment.GetEnvironmentVariable("LAB_STATE_ROOT") ?? "/run/fzlab", Prefix);
    public TimeSpan Remaining => _budget - _clock.Elapsed;

    /// <summary>Creates the lab. `underlay` (4 or 6) is the family of the tunnel endpoints.</summary>
    public static Lab Up(ITestOutputHelper output, TimeSpan budget, int underlay = 4)
    {
        var lab = new Lab(output, budget, underlay);
        try
        {
            lab.Script("up", lab.Prefix);
            lab._up = true;
            return lab;
        }
        catch
        {
            lab.Dispose();
            throw;
        }
    }

    /// <summary>Sets an environment variable for the following lab.sh calls (ENDPOINTS, PSK).</summary>
    public void SetOption(string name, string value) => _environment[name] = value;

    /// <summary>Runs `lab.sh ARGS...`; throws with its stderr if it fails.</summary>
    public string Script(params string[] arguments) => Check(TryScript(arguments)).StandardOutput;

    public ProcessResult TryScript(params string[] arguments) => TryScript(CommandTimeout, arguments);

    public ProcessResult TryScript(TimeSpan timeout, params string[] arguments)
    {
        var left = Remaining;
        if (left <= TimeSpan.Zero)
        {
            throw new TimeoutException($"test budget of {_budget.TotalSeconds:0} s spent before: lab.sh {string.Join(' ', arguments)}");
        }
        var args = new List<string>(arguments.Length + 1) { Paths.LabScript };
        args.AddRange(arguments);
        var result = ProcessRunner.Run("bash", args, timeout < left ? timeout : left, _environment);
        _output.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:0.00}s] lab.sh {string.Join(' ', arguments)} -> {result.ExitCode}");
        if (!result.Succeeded && result.StandardError.Length > 0)
        {
            _output.WriteLine("    " + result.StandardError.Trim().Replace("\n", "\n    ", StringComparison.Ordinal));
        }
        return result;
    }

    /// <summary>Runs CMD in ROLE's namespace; throws if it fails.</summary>
    public string Exec(string role, params string[] command) => Check(TryExec(role, command)).StandardOutput;

    public ProcessResult TryExec(string role, params string[] command)
    {
        var args = new List<string> { "exec", Prefix, role };
        args.AddRange(command);
        return TryScript([.. args]);
    }

    /// <summary>Runs CMD in ROLE's namespace in the background; output goes to StateDirectory/NAME.out.</summary>
    public void Background(string role, string name, params string[] command)
    {
        var args = new List<string> { "bg", Prefix, role, name };
        args.AddRange(command);
        Script([.. args]);
    }

    public void StopBackground(string name) => Script("kill", Prefix, name);

    public string BackgroundOutput(string name) => ReadState(name + ".out");

    public string BackgroundError(string name) => ReadState(name + ".err");

    public string ReadState(string file)
    {
        var path = Path.Combine(StateDirectory, file);
        return File.Exists(path) ? File.ReadAllText(path) : "";
    }

    /// <summary>Waits until `condition` holds, polling, within `timeout` (and the budget); false if it never did.</summary>
    public bool WaitUntil(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (condition())
            {
                return true;
            }
            if (deadline.Elapsed >= timeout || Remaining <= TimeSpan.Zero)
            {
                return false;
            }
            Thread.Sleep(100);
        }
    }

    /// <summary>One ping; true if a reply came back within `waitSeconds`.</summary>
    public bool Ping(string role, string address, int count = 1, int waitSeconds = 2) =>
        TryExec(role, "ping", "-n", "-q", "-c", count.ToString(CultureInfo.InvariantCulture), "-i", "0.2",
            "-W", waitSeconds.ToString(CultureInfo.InvariantCulture), address).Succeeded;

    /// <summary>
    /// The first ping after the daemons started: it also carries the handshake, and the first packet
    /// through a daemon that compiles its path as it goes, so it waits 5 s for the reply, not 2 (not
    /// measured to fail; the margin a loaded 2-core machine leaves is unknown). For that first ping only: a ping that checks a
    /// recovery keeps its 2 s, within which a tunnel that must handshake again would not answer.
    /// </summary>
    public bool FirstPing(string role, string address, int count = 1) => Ping(role, address, count, waitSeconds: 5);

    /// <summary>Pings once a second until a reply comes or `timeout` passes.</summary>
    public bool PingUntilReply(string role, string address, TimeSpan timeout) =>
        WaitUntil(() => Ping(role, address, 1, 1), timeout);

    public CounterSnapshot Counters() => CounterSnapshot.Parse(Script("counters", Prefix));

    public void Mark(int percent) => Script("mark", Prefix, percent.ToString(CultureInfo.InvariantCulture));

    /// <summary>"ce", "ect1" or "off": the router's outer ECN on every tunnel datagram.</summary>
    public void Force(string mode) => Script("force", Prefix, mode);

    /// <summary>Moves the client's underlay addresses (.2 -> .3 and back).</summary>
    public void Roam() => Script("roam", Prefix);

    /// <summary>The role's TCP sender counter TcpExtTCPDeliveredCE (RFC 3168 echo reached the sender).</summary>
    public long DeliveredCe(string role)
    {
        foreach (var line in Exec(role, "nstat", "-asz", "TcpExtTCPDeliveredCE").Split('\n'))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 2 && fields[0] == "TcpExtTCPDeliveredCE")
            {
                return long.Parse(fields[1], CultureInfo.InvariantCulture);
            }
        }
        throw new InvalidOperationException("nstat printed no TcpExtTCPDeliveredCE");
    }

    /// <summary>Starts a checksummed TCP transfer (scripts/lab/xfer.py) between two namespaces.</summary>
    public Transfer StartTransfer(string listenerRole, string listenAddress, string listenerMode, string connectorRole,
        long bytes, double bytesPerSecond = 0) =>
        Transfer.Start(this, listenerRole, listenAddress, _nextPort++, listenerMode, connectorRole, bytes, bytesPerSecond);

    /// <summary>Sends `bytes` from `from` to a listener in `to` at `address`, waits and asserts the checksums match.</summary>
    public Transfer.Result SendAndVerify(string from, string to, string address, long bytes, TimeSpan timeout)
    {
        var transfer = StartTransfer(to, address, "recv", from, bytes);
        var result = transfer.Wait(timeout);
        result.AssertIntact(bytes);
        return result;
    }

    public static ProcessResult Check(ProcessResult result) =>
        result.Succeeded ? result : throw new InvalidOperationException(
            $"{result.Command} failed with exit code {result.ExitCode}: {result.StandardError.Trim()}");

    public void Log(string line) => _output.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:0.00}s] {line}");

    public void Dispose()
    {
        // The implementations' logs die with the state directory: keep their tails in the test output.
        foreach (var log in new[] { "wg-client.log", "wg-gateway.log", "fz-client.jsonl", "fz-gateway.jsonl" })
        {
            var text = ReadState(log);
            if (text.Length > 0)
            {
                var lines = text.TrimEnd().Split('\n');
                _output.WriteLine($"--- {log} (last {Math.Min(15, lines.Length)} of {lines.Length} lines)");
                foreach (var line in lines.AsSpan(Math.Max(0, lines.Length - 15)))
                {
                    _output.WriteLine(line.Length > 400 ? line[..400] + "..." : line);
                }
            }
        }
        // Always, also after a failed `up` (it may have made some namespaces) or a spent budget.
        var result = ProcessRunner.Run("bash", [Paths.LabScript, "down", Prefix], TimeSpan.FromSeconds(60), _environment);
        _output.WriteLine($"lab.sh down {Prefix} -> {result.ExitCode} (after {_clock.Elapsed.TotalSeconds:0.0} s{(_up ? "" : ", up had failed")})");
        if (!result.Succeeded)
        {
            _output.WriteLine(result.StandardError);
        }
    }
}
