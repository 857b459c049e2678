using Firezone.Actors.Engine;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Uapi;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Config;

/// <summary>
/// Service mode: the ECN mode the configuration file names for a peer (its own <c>#! EcnMode</c>, else
/// the [Interface]'s), as the file reads when a UAPI request creates peers. The UAPI carries no ECN
/// mode, and wg strips the directives: without this, <c>wg setconf</c> (which removes and re-creates
/// every peer) turned a peer the file runs in compatibility mode back to normal, and a peer that
/// <c>systemctl reload</c> (wg syncconf) adds got the [Interface]'s mode whatever its own said. A
/// peer the request changes but does not create keeps the mode it runs in. A file that no longer
/// reads gives the modes it named at the start, with a Warning.
/// </summary>
public sealed class FileEcnModes(TunnelConfig atStart, ILogger logger)
{
    /// <summary>The problem last logged at Warning; the same one again is logged at Debug (a script's `wg set` loop).</summary>
    private string? _lastProblem;

    /// <summary>Reads the file now; the lookup answers for the request at hand. One request at a time (the UAPI's lock).</summary>
    public NewPeerEcnMode Read()
    {
        TunnelConfig config = atStart;
        try
        {
            config = new WgQuickConfigParser(NoHostNameLookup.Instance).ParseFile(atStart.SourcePath);
            _lastProblem = null;
        }
        catch (ConfigException e)
        {
            var level = e.Message == _lastProblem ? LogLevel.Debug : LogLevel.Warning;
            _lastProblem = e.Message;
            logger.Log(level, "New peers get the ECN modes {ConfigFile} named at the start: it does not read now ({Problem})",
                atStart.SourcePath, e.Message);
        }
        var modes = new Dictionary<WireGuardKey, EcnMode>(config.Peers.Count);
        foreach (var peer in config.Peers)
        {
            modes[peer.PublicKey] = peer.EcnMode;
        }
        EcnMode fallback = config.Interface.DefaultEcnMode;
        return key => modes.TryGetValue(key, out var mode) ? mode : fallback;
    }
}
