using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;

namespace Firezone.Actors.Host.Daemon;

/// <summary>
/// SIGHUP stops the daemon cleanly, as SIGTERM does. The generic host handles SIGINT, SIGQUIT and
/// SIGTERM only, so without this a hang-up (the terminal or ssh session of a foreground `up` closed,
/// a `kill -HUP` from habit) would end the process at once, leaving in service mode the policy
/// rules, the nftables table, the state file and the UAPI socket behind. A daemon started with
/// SIGHUP ignored (`nohup`) keeps ignoring it. The stop is logged with its cause: many daemons
/// reload on SIGHUP, and an operator who sent it from that habit found the tunnel down and the log
/// saying only "Application is shutting down...", with no word of the signal (and under the unit,
/// exit 0: no restart).
/// </summary>
internal static class HangupStop
{
    private const int Sighup = 1;

    /// <summary>Stops <paramref name="lifetime"/> on SIGHUP; null (nothing registered) when SIGHUP is ignored.</summary>
    public static IDisposable? Register(IHostApplicationLifetime lifetime, Serilog.ILogger? logger = null, string? interfaceName = null)
    {
        if (IsIgnored(Sighup))
        {
            return null;
        }
        return PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            logger?.Information(StopMessage, interfaceName);
            lifetime.StopApplication();
        });
    }

    internal const string StopMessage =
        "SIGHUP received: stopping {Interface} cleanly, as on SIGTERM (a hang-up is no reload: systemctl reload, or wg syncconf, applies a changed file)";

    /// <summary>
    /// Whether <paramref name="signal"/> is ignored, from the SigIgn mask of /proc/self/status
    /// (proc(5)): a registration would replace the SIG_IGN that nohup set.
    /// </summary>
    internal static bool IsIgnored(int signal)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("SigIgn:", StringComparison.Ordinal))
                {
                    ulong mask = ulong.Parse(line.AsSpan("SigIgn:".Length).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    return (mask & (1UL << (signal - 1))) != 0;
                }
            }
        }
        catch (IOException)
        {
            // No /proc: take SIGHUP as not ignored.
        }
        return false;
    }
}
