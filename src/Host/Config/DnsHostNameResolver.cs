using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Firezone.Actors.Host.Logging;

namespace Firezone.Actors.Host.Config;

/// <summary>
/// The system resolver (getaddrinfo through <see cref="Dns"/>). With <c>WG_ENDPOINT_RESOLUTION_RETRIES</c>
/// set (wg-quick@.service sets <c>infinity</c>) a temporary failure is retried as wg(8) does: that many
/// times (<c>infinity</c>: no limit), waiting 1 s and then 1.2 times longer each time, at most 20 s, so
/// a start before the network (or DNS) is up waits for it. Unset, it fails at once (exit 1, which
/// the systemd unit restarts on) where wg would retry 15 times. "No such name" (EAI_NONAME,
/// EAI_NODATA, EAI_FAIL) is never retried, as in wg.
/// </summary>
public sealed class DnsHostNameResolver : IHostNameResolver
{
    public const string RetriesVariable = "WG_ENDPOINT_RESOLUTION_RETRIES";

    /// <summary>wg's count for a value it cannot read.</summary>
    public const int DefaultRetries = 15;

    public static readonly DnsHostNameResolver Instance = new(Dns.GetHostAddresses, wait: null, Console.Error, RetriesFrom(Environment.GetEnvironmentVariable(RetriesVariable)));

    private static readonly TimeSpan FirstWait = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LongestWait = TimeSpan.FromSeconds(20);

    private readonly Func<string, IPAddress[]> _lookup;
    private readonly Action<TimeSpan>? _wait;
    private readonly TextWriter _progress;
    private readonly int _retries;

    /// <param name="wait">The wait between tries (tests); null: one that a SIGTERM or SIGINT ends (<see cref="StopSignals"/>).</param>
    /// <param name="retries">How many times a temporary failure is retried; negative: without limit.</param>
    public DnsHostNameResolver(Func<string, IPAddress[]> lookup, Action<TimeSpan>? wait, TextWriter progress, int retries)
    {
        _lookup = lookup;
        _wait = wait;
        _progress = progress;
        _retries = retries;
    }

    /// <exception cref="HostNameResolutionException">The name does not resolve (permanently, or still after the retries).</exception>
    public IReadOnlyList<IPAddress> Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            // A zone by a name no interface has: IPAddress.TryParse gives scope 0 (the zone
            // dropped), where wg's getaddrinfo fails it ("Name or service not known"). A number
            // is kept as it is, by both.
            if (literal.AddressFamily == AddressFamily.InterNetworkV6 && literal.ScopeId == 0 && host.IndexOf('%') is int zone and >= 0 && !DecimalText.IsDigits(host[(zone + 1)..]))
            {
                throw new HostNameResolutionException(host, $"no interface '{host[(zone + 1)..]}' for the address's zone");
            }
            return [literal];
        }
        var wait = FirstWait;
        // Watched from before the first try to the last: a stop that comes during a lookup (which
        // can take seconds without a reachable server) ends the next wait at once.
        using var stops = _wait is null && _retries != 0 ? new StopSignals() : null;
        for (int left = _retries; ; left--)
        {
            try
            {
                var addresses = _lookup(host);
                if (stops?.StoppedBy("while the name was looked up") is { } stopped)
                {
                    throw new HostNameResolutionException(host, stopped);
                }
                return addresses;
            }
            catch (SocketException e)
            {
                string reason = Reason(e);
                if (IsPermanent(e.SocketErrorCode))
                {
                    throw new HostNameResolutionException(host, reason);
                }
                if (left == 0)
                {
                    throw new HostNameResolutionException(host, _retries == 0 ? reason + WaitHint : reason);
                }
                // One line per try, as wg prints it: a service waiting at boot says why.
                _progress.WriteLine(JournalErrorWriter.NoticeLine($"firezone-tunnel: cannot resolve the host name {host}: {reason}; trying again in {wait.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s"));
                try
                {
                    if (stops is not null)
                    {
                        stops.Wait(wait);
                    }
                    else
                    {
                        _wait!(wait);
                    }
                }
                catch (OperationCanceledException stopped)
                {
                    throw new HostNameResolutionException(host, stopped.Message);
                }
                wait = TimeSpan.FromTicks(Math.Min(LongestWait.Ticks, wait.Ticks * 6 / 5));
            }
        }
    }

    /// <summary>
    /// SIGTERM and SIGINT while a name is retried, which end the wait between tries
    /// (<see cref="OperationCanceledException"/>). The daemon's own handlers come later, so as PID 1
    /// of a container, where the kernel drops a signal with the default action, a stop waited out
    /// every retry (with <c>infinity</c>, until the runtime's SIGKILL); registered for the whole
    /// retry loop, not only for each wait, a stop that came during a lookup is not lost either.
    /// </summary>
    private sealed class StopSignals : IDisposable
    {
        private readonly ManualResetEventSlim _stop = new();
        private readonly PosixSignalRegistration _terminate;
        private readonly PosixSignalRegistration _interrupt;
        private PosixSignal _received;

        public StopSignals()
        {
            _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
            _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
        }

        public void Wait(TimeSpan wait)
        {
            if (_stop.Wait(wait))
            {
                throw new OperationCanceledException($"{_received} received while waiting to try again");
            }
        }

        /// <summary>What stopped it, <paramref name="when"/>; null when nothing did. A stop that came during a lookup that then succeeded still stops (as PID 1 nothing else would).</summary>
        public string? StoppedBy(string when) => _stop.IsSet ? $"{_received} received {when}" : null;

        public void Dispose()
        {
            _terminate.Dispose();
            _interrupt.Dispose();
            _stop.Dispose();
        }

        private void Handle(PosixSignalContext context)
        {
            // Handled here (not the default action, which ended the process at once elsewhere than
            // as PID 1): the start ends through its failure path, which removes what it made.
            context.Cancel = true;
            _received = context.Signal;
            _stop.Set();
        }
    }

    /// <summary>
    /// WG_ENDPOINT_RESOLUTION_RETRIES: a count, or "infinity" (-1); unset: none. wg refuses a value it
    /// cannot read ("Unable to parse"); here it means wg's default, 15, so that a service does not
    /// fail to start over a variable meant to make it wait longer.
    /// </summary>
    public static int RetriesFrom(string? text) => text switch
    {
        null or "" => 0,
        "infinity" => -1,
        _ when int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int count) => count,
        _ => DefaultRetries,
    };

    /// <summary>
    /// What a temporary failure without retries adds: wg-quick (wg's 15 tries by default) waited
    /// about 2.5 minutes for a laptop's network, where <c>up</c> stopped at once with no word that
    /// it could wait.
    /// </summary>
    internal const string WaitHint = " (no network or DNS yet? " + RetriesVariable + "=infinity, or a count, makes up wait for it, as wg-quick's wg tries 15 times)";

    /// <summary>
    /// The resolver's reason as wg prints it (gai_strerror): .NET words EAI_AGAIN as "Resource
    /// temporarily unavailable", which reads like a problem of this machine's resources.
    /// </summary>
    private static string Reason(SocketException e) =>
        e.SocketErrorCode == SocketError.TryAgain ? "Temporary failure in name resolution" : e.Message;

    /// <summary>glibc's permanent answers (EAI_NONAME, EAI_NODATA, EAI_FAIL), which wg does not retry either.</summary>
    private static bool IsPermanent(SocketError error) =>
        error is SocketError.HostNotFound or SocketError.NoData or SocketError.NoRecovery;
}
