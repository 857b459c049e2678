using System.Diagnostics;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// `firezone-tunnel -f NAME` (or `up --config`) running inside a namespace. `ip netns exec` execs
/// the program, so the PID we hold is the daemon's (except under <see cref="StartAsService"/>, where
/// it is unshare's and <see cref="ChildPid"/> is the daemon's); dispose stops it by that PID if it
/// still runs (SIGTERM, then SIGKILL after 10 s), waits for the daemon to be gone, and removes its
/// socket, log and state files.
/// </summary>
internal sealed class DaemonProcess : IAsyncDisposable
{
    public static readonly string Executable = Path.Combine(AppContext.BaseDirectory, "firezone-tunnel");

    private readonly Process _process;
    private readonly Task<string> _stderr;
    private readonly System.Text.StringBuilder _stderrSoFar = new();
    private readonly Task<string> _stdout;

    private readonly bool _asService;

    private DaemonProcess(Process process, string name, string logFile, bool asService = false)
    {
        _process = process;
        _asService = asService;
        Name = name;
        LogFile = logFile;
        _stderr = CollectAsync(process.StandardError, _stderrSoFar);
        _stdout = process.StandardOutput.ReadToEndAsync();
    }

    /// <summary>Reads <paramref name="reader"/> to its end into <paramref name="into"/>, which can be looked at meanwhile.</summary>
    private static async Task<string> CollectAsync(StreamReader reader, System.Text.StringBuilder into)
    {
        var chunk = new char[4096];
        for (int n; (n = await reader.ReadAsync(chunk)) > 0;)
        {
            lock (into)
            {
                into.Append(chunk, 0, n);
            }
        }
        lock (into)
        {
            return into.ToString();
        }
    }

    /// <summary>What the daemon wrote on stderr so far (<see cref="Stderr"/> completes only at its exit).</summary>
    public string StderrSoFar
    {
        get
        {
            lock (_stderrSoFar)
            {
                return _stderrSoFar.ToString();
            }
        }
    }

    /// <summary>Waits (bounded, 30 s) until stderr holds <paramref name="text"/>; false if it never did or the daemon exited first.</summary>
    public async Task<bool> WaitForStderrAsync(string text)
    {
        for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30); DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            if (StderrSoFar.Contains(text, StringComparison.Ordinal))
            {
                return true;
            }
            if (_stderr.IsCompleted)
            {
                return false;
            }
        }
        return false;
    }

    public string Name { get; }

    public string LogFile { get; }

    public string SocketPath => UapiSocketPath.For(Name);

    public int Pid => _process.Id;

    public Task<string> Stderr => _stderr;

    /// <summary>Everything the daemon wrote on stdout (a pipe: JSON lines), complete once it exited.</summary>
    public Task<string> Stdout => _stdout;

    public static DaemonProcess Start(NetworkNamespace ns, string name, params string[] arguments) =>
        StartUnder(ns, name, [], arguments);

    /// <summary>
    /// As <see cref="Start"/>, through <paramref name="wrapper"/> (a program that execs the rest,
    /// such as <c>env --default-signal=HUP</c>), so the PID is still the daemon's.
    /// </summary>
    public static DaemonProcess StartUnder(NetworkNamespace ns, string name, string[] wrapper, params string[] arguments)
    {
        string logFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", ns.Name, .. wrapper, Executable, .. arguments, "--log-file", logFile])
        {
            start.ArgumentList.Add(a);
        }
        return new DaemonProcess(Process.Start(start)!, name, logFile);
    }

    /// <summary>
    /// The daemon as a service manager runs it: PID 1 of a new PID namespace (`unshare --pid
    /// --fork`) with <c>NOTIFY_SOCKET</c> set, which is how .NET's systemd integration recognises a
    /// service without systemd as the parent (containerised services). The PID we hold is
    /// unshare's; <see cref="ChildPid"/> is the daemon's. `--kill-child` ends the daemon if unshare
    /// is killed, so disposing cleans up either way.
    /// </summary>
    public static DaemonProcess StartAsService(NetworkNamespace ns, string name, string notifySocket, params string[] arguments)
    {
        string logFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", ns.Name, "unshare", "--pid", "--fork", "--kill-child", Executable, .. arguments, "--log-file", logFile])
        {
            start.ArgumentList.Add(a);
        }
        start.Environment["NOTIFY_SOCKET"] = notifySocket;
        return new DaemonProcess(Process.Start(start)!, name, logFile, asService: true);
    }

    /// <summary>
    /// The daemon as a container runs its command: PID 1 of a new PID namespace (`unshare --pid
    /// --fork`), with neither <c>-f</c> nor <c>WG_PROCESS_FOREGROUND</c> nor <c>NOTIFY_SOCKET</c>.
    /// The PID we hold is unshare's; <see cref="ChildPid"/> is the daemon's.
    /// </summary>
    public static DaemonProcess StartAsContainer(NetworkNamespace ns, string name, params string[] arguments) =>
        StartAsContainer(ns, name, new Dictionary<string, string>(), arguments);

    /// <summary>As <see cref="StartAsContainer(NetworkNamespace, string, string[])"/>, with <paramref name="environment"/> added.</summary>
    public static DaemonProcess StartAsContainer(NetworkNamespace ns, string name, IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        string logFile = Path.Combine(Path.GetTempPath(), $"fzt-{name}.log");
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", ns.Name, "unshare", "--pid", "--fork", "--kill-child", Executable, .. arguments, "--log-file", logFile])
        {
            start.ArgumentList.Add(a);
        }
        start.Environment.Remove("WG_PROCESS_FOREGROUND");
        start.Environment.Remove("NOTIFY_SOCKET");
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        return new DaemonProcess(Process.Start(start)!, name, logFile, asService: true);
    }

    public bool HasExited => _process.HasExited;

    /// <summary>The PID of this process's only child (the daemon under `unshare --fork`), 0 while it has none.</summary>
    public int ChildPid
    {
        get
        {
            string children = File.ReadAllText($"/proc/{_process.Id}/task/{_process.Id}/children").Trim();
            return children.Length == 0 ? 0 : int.Parse(children.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    /// <summary>Waits (bounded) until the UAPI socket exists, i.e. the daemon is ready.</summary>
    public async Task WaitReadyAsync()
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!File.Exists(SocketPath))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"daemon exited {_process.ExitCode}: {await _stderr}");
            }
            await Task.Delay(50, bound.Token);
        }
    }

    /// <summary>The log file once it contains <paramref name="text"/>, or as it is after 10 s (the caller's Assert then says what is missing).</summary>
    public async Task<string> WaitForLogAsync(string text)
    {
        string log = "";
        for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10); DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            log = await File.ReadAllTextAsync(LogFile);
            if (log.Contains(text, StringComparison.Ordinal))
            {
                break;
            }
        }
        return log;
    }

    /// <summary>Signals the daemon (under <see cref="StartAsService"/>, the child, not unshare).</summary>
    public void Signal(int signal) => Assert.True(TrySignal(signal), "no daemon to signal");

    /// <summary>
    /// As <see cref="Signal"/>, false when there is no daemon (any more). Never kill(0, ...): a
    /// child that has just exited reads as PID 0, and kill(0) signals the test host's own group.
    /// </summary>
    public bool TrySignal(int signal)
    {
        int pid;
        try
        {
            pid = _asService ? ChildPid : _process.Id;
        }
        catch (IOException)
        {
            return false; // unshare itself is gone (its /proc entry with it)
        }
        return pid > 0 && Tmds.Linux.LibC.kill(pid, signal) == 0;
    }

    /// <summary>The exit code, waiting at most <paramref name="bound"/> (a hang guard, not a speed test).</summary>
    public async Task<int> WaitForExitAsync(TimeSpan bound)
    {
        using var cts = new CancellationTokenSource(bound);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            int child = _asService ? ChildPid : 0;
            // A clean stop first (SIGTERM), so the daemon removes what outlives it on the host (its
            // state file in /run/firezone-tunnel); SIGKILL only if it does not stop within 10 s.
            Tmds.Linux.LibC.kill(child != 0 ? child : _process.Id, 15);
            using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
            {
                try
                {
                    await _process.WaitForExitAsync(stop.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill(); // under unshare --kill-child the daemon gets SIGKILL when unshare dies
                }
            }
            await _process.WaitForExitAsync();
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (child != 0 && Directory.Exists($"/proc/{child}") && !bound.IsCancellationRequested)
            {
                await Task.Delay(20, CancellationToken.None);
            }
        }
        _process.Dispose();
        File.Delete(SocketPath);
        File.Delete(LogFile);
        // The directory exists only once some daemon wrote a state file (File.Delete throws without it).
        string stateFile = Path.Combine(Network.NetworkSetupStateFile.DefaultDirectory, Name + ".json");
        if (File.Exists(stateFile))
        {
            File.Delete(stateFile);
        }
    }
}
