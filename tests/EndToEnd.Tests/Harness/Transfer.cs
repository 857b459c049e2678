using System.Globalization;

namespace Firezone.Actors.EndToEnd.Tests.Harness;

/// <summary>
/// A checksummed TCP transfer through the tunnel (scripts/lab/xfer.py): a listener in one namespace,
/// a connector in another, both in the background so a test can act mid-transfer. Each side prints
/// "BYTES SHA256" when done; the transfer is intact when both lines are equal.
/// </summary>
public sealed class Transfer
{
    private readonly Lab _lab;
    private readonly string _listener;
    private readonly string _connector;

    private Transfer(Lab lab, string listener, string connector)
    {
        _lab = lab;
        _listener = listener;
        _connector = connector;
    }

    public sealed record Result(string Listener, string Connector, TimeSpan Elapsed)
    {
        public void AssertIntact(long bytes)
        {
            Assert.Equal(Listener, Connector);
            Assert.StartsWith(bytes.ToString(CultureInfo.InvariantCulture) + " ", Listener);
        }
    }

    internal static Transfer Start(Lab lab, string listenerRole, string listenAddress, int port, string listenerMode,
        string connectorRole, long bytes, double bytesPerSecond)
    {
        var p = port.ToString(CultureInfo.InvariantCulture);
        var size = bytes.ToString(CultureInfo.InvariantCulture);
        var rate = bytesPerSecond.ToString(CultureInfo.InvariantCulture);
        var connectorMode = listenerMode == "recv" ? "send" : "recv";
        var listener = "listen" + p;
        var connector = "connect" + p;
        lab.Background(listenerRole, listener, Paths.Python, Paths.TransferScript, "listen", listenAddress, p, listenerMode,
            size, "--timeout", "90", "--rate", rate);
        if (!lab.WaitUntil(() => lab.BackgroundError(listener).Contains("listening", StringComparison.Ordinal), TimeSpan.FromSeconds(10)))
        {
            throw new InvalidOperationException($"transfer listener did not start: {lab.BackgroundError(listener)}");
        }
        lab.Background(connectorRole, connector, Paths.Python, Paths.TransferScript, "connect", listenAddress, p, connectorMode,
            size, "--timeout", "90", "--rate", rate);
        lab.Log($"transfer of {bytes} bytes started: {listenerRole} {listenAddress}:{p} ({listenerMode}) <- {connectorRole}");
        return new Transfer(lab, listener, connector);
    }

    public bool IsDone => Done(_listener) && Done(_connector);

    /// <summary>Waits for both sides to report; throws with their stderr if they do not in time.</summary>
    public Result Wait(TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (!_lab.WaitUntil(() => IsDone || Failed(_listener) || Failed(_connector), timeout) || !IsDone)
        {
            throw new InvalidOperationException($"transfer failed or not done within {timeout.TotalSeconds:0} s; listener: " +
                $"'{_lab.BackgroundOutput(_listener).Trim()}' {_lab.BackgroundError(_listener).Trim()}; connector: " +
                $"'{_lab.BackgroundOutput(_connector).Trim()}' {_lab.BackgroundError(_connector).Trim()}");
        }
        var result = new Result(_lab.BackgroundOutput(_listener).Trim(), _lab.BackgroundOutput(_connector).Trim(), clock.Elapsed);
        _lab.Log($"transfer done: listener '{result.Listener}', connector '{result.Connector}'");
        return result;
    }

    private bool Done(string name) => _lab.BackgroundOutput(name).EndsWith('\n');

    private bool Failed(string name) => _lab.BackgroundError(name).Contains("Traceback", StringComparison.Ordinal);
}
