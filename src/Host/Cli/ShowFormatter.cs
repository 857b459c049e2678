using System.Globalization;
using System.Text;
using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Uapi;

namespace Firezone.Actors.Host.Cli;

/// <summary>
/// The text of <c>firezone-tunnel show INTERFACE</c>: wg(8)'s <c>show</c> layout plus each peer's
/// ECN mode and counters (RFC 6040 copy-in and copy-out).
/// </summary>
public static class ShowFormatter
{
    public static string Format(string interfaceName, DeviceStatus status, DateTimeOffset now)
    {
        var text = new StringBuilder();
        text.Append("interface: ").Append(interfaceName).Append('\n');
        if (status.PublicKey is { } publicKey)
        {
            text.Append("  public key: ").Append(publicKey.ToBase64()).Append('\n');
        }
        if (status.PrivateKey is not null)
        {
            text.Append("  private key: (hidden)\n");
        }
        if (status.ListenPort != 0)
        {
            text.Append("  listening port: ").Append(status.ListenPort.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        if (status.Fwmark != 0)
        {
            text.Append("  fwmark: 0x").Append(status.Fwmark.ToString("x", CultureInfo.InvariantCulture)).Append('\n');
        }
        if (status.BuffersOutstanding is int outstanding)
        {
            text.Append("  packet buffers: ").Append(outstanding.ToString(CultureInfo.InvariantCulture)).Append(" buffers outstanding\n");
        }
        if (status.Drops is { } drops)
        {
            if (Dropped(drops) is { } dropped)
            {
                text.Append("  dropped: ").Append(dropped).Append('\n');
            }
            if (drops.CookieRepliesSent != 0)
            {
                text.Append("  under load: ").Append(drops.CookieRepliesSent.ToString(CultureInfo.InvariantCulture)).Append(" cookie replies sent\n");
            }
        }
        foreach (var peer in InWgShowOrder(status.Peers))
        {
            var config = peer.Config;
            text.Append("\npeer: ").Append(config.PublicKey.ToBase64()).Append('\n');
            if (config.PresharedKey is not null)
            {
                text.Append("  preshared key: (hidden)\n");
            }
            if (!peer.Endpoint.IsNone)
            {
                text.Append("  endpoint: ").Append(EndpointText.FormatAsWg(peer.Endpoint)).Append('\n');
            }
            text.Append("  allowed ips: ").Append(config.AllowedIps.Count == 0 ? "(none)" : string.Join(", ", config.AllowedIps)).Append('\n');
            if (peer.LastHandshake is { } handshake)
            {
                text.Append("  latest handshake: ").Append(Ago(handshake, now)).Append('\n');
            }
            if (peer.RxBytes != 0 || peer.TxBytes != 0)
            {
                text.Append("  transfer: ").Append(Bytes(peer.RxBytes)).Append(" received, ").Append(Bytes(peer.TxBytes)).Append(" sent\n");
            }
            if (config.PersistentKeepaliveSeconds != 0)
            {
                text.Append("  persistent keepalive: every ").Append(Duration(config.PersistentKeepaliveSeconds)).Append('\n');
            }
            var ecn = peer.Ecn;
            text.Append("  ecn mode: ").Append(UapiGetFormatter.EcnModeName(config.EcnMode)).Append('\n');
            text.Append(CultureInfo.InvariantCulture,
                $"  ecn: {ecn.EctSent} ECT sent, {ecn.CeReceived} CE received, {ecn.CePropagated} CE propagated, {ecn.EcnDrops} ECN drops, {ecn.AlarmEvents} (!!!) events\n");
            if (peer.Stopped is { } why)
            {
                text.Append("  stopped: ").Append(why).Append(" (`wg set ").Append(interfaceName).Append(" peer ")
                    .Append(config.PublicKey.ToBase64()).Append("` starts it again)\n");
            }
            if (Dropped(peer.Drops) is { } peerDropped)
            {
                text.Append("  dropped: ").Append(peerDropped).Append('\n');
            }
        }
        return text.ToString();
    }

    /// <summary>
    /// What the tunnel dropped before any peer saw it, the counts that are not zero (null: none):
    /// a scan or flood of the port shows here, and so do packets routed into the interface for
    /// unicast addresses no peer's allowed IPs hold. Multicast for no peer is left out: the kernel
    /// sends its own (IPv6 router solicitations and MLD reports as the link comes up) on every
    /// interface, so every fresh tunnel would show some.
    /// </summary>
    private static string? Dropped(Actors.Peers.DeviceDropCounts drops) => NonZero(
        (drops.DatagramsInvalid, "datagrams that are no WireGuard message"),
        (drops.DatagramsUnknownReceiver, "datagrams for no session (unknown receiver index)"),
        (drops.HandshakesRejected, "handshake messages refused (bad mac1 or mac2, or no room for a cookie reply)"),
        (drops.HandshakesUnknownPeer, "initiations from no configured peer"),
        (drops.HandshakesRateLimited, "initiations over their source's rate limit"),
        (drops.HandshakesQueueFull, "initiations beyond the handshake queue"),
        (drops.TunPacketsNoRoute, "packets to addresses in no peer's allowed IPs"),
        (drops.TunPacketsInvalid, "invalid packets from the interface"));

    /// <summary>What was dropped or refused for one peer, the counts that are not zero (null: none).</summary>
    private static string? Dropped(PeerDropCounts drops) => NonZero(
        ((long)drops.SourceNotAllowed, "packets from addresses outside its allowed IPs"),
        ((long)drops.Refused, "datagrams refused (failed authentication, replayed or malformed)"),
        ((long)drops.QueueFull, "packets behind a full queue"),
        ((long)drops.NotSent, "datagrams the socket did not send"),
        ((long)drops.OutboundRefused, "packets from the interface refused (not IP, too large or empty)"),
        ((long)drops.Restarts, $"restart(s) after a fault ({drops.RestartDrops.ToString(CultureInfo.InvariantCulture)} packets queued then)"));

    /// <summary>"N what, M what" of the counts that are not zero, in order; null when all are.</summary>
    private static string? NonZero(params ReadOnlySpan<(long Count, string What)> counts)
    {
        var parts = new List<string>();
        foreach (var (count, what) in counts)
        {
            if (count != 0)
            {
                parts.Add(count.ToString(CultureInfo.InvariantCulture) + " " + what);
            }
        }
        return parts.Count == 0 ? null : string.Join(", ", parts);
    }

    /// <summary>
    /// The peers as wg show lists them (its sort_peers): the latest handshake first, those without
    /// one last, so a Gateway's live Clients come before the hundreds gone quiet. Stable, so peers
    /// that tie keep the daemon's order.
    /// </summary>
    private static IEnumerable<PeerStatus> InWgShowOrder(IReadOnlyList<PeerStatus> peers) =>
        peers.OrderByDescending(p => p.LastHandshake ?? DateTimeOffset.MinValue);

    /// <summary>
    /// "1 minute, 5 seconds ago", as wg(8) prints the latest handshake: in whole seconds of the
    /// clock (its time(NULL) less the handshake's tv_sec, not the exact difference cut down), and a
    /// handshake later than now means the clock was set back.
    /// </summary>
    public static string Ago(DateTimeOffset handshake, DateTimeOffset now)
    {
        long seconds = now.ToUnixTimeSeconds() - handshake.ToUnixTimeSeconds();
        return seconds switch
        {
            0 => "Now",
            < 0 => "(System clock wound backward; connection problems may ensue.)",
            _ => Duration(seconds) + " ago",
        };
    }

    /// <summary>
    /// "1 minute, 5 seconds", as wg(8) spells a handshake's age and the persistent keepalive's
    /// interval (its pretty_time: units that are zero left out, "1 second" singular).
    /// </summary>
    public static string Duration(long seconds)
    {
        var parts = new List<string>(4);
        void Part(long value, string unit)
        {
            if (value != 0)
            {
                parts.Add(value.ToString(CultureInfo.InvariantCulture) + " " + unit + (value == 1 ? "" : "s"));
            }
        }
        // wg's years are 365 days each.
        Part(seconds / (365 * 86400), "year");
        Part(seconds % (365 * 86400) / 86400, "day");
        Part(seconds / 3600 % 24, "hour");
        Part(seconds / 60 % 60, "minute");
        Part(seconds % 60, "second");
        return string.Join(", ", parts);
    }

    /// <summary>"1.50 KiB", as wg(8) prints transfer.</summary>
    public static string Bytes(ulong bytes) => bytes switch
    {
        < 1024 => bytes.ToString(CultureInfo.InvariantCulture) + " B",
        < 1024UL * 1024 => Hundredths(bytes / 1024.0) + " KiB",
        < 1024UL * 1024 * 1024 => Hundredths(bytes / (1024.0 * 1024)) + " MiB",
        < 1024UL * 1024 * 1024 * 1024 => Hundredths(bytes / (1024.0 * 1024 * 1024)) + " GiB",
        _ => Hundredths(bytes / (1024.0 * 1024 * 1024 * 1024)) + " TiB",
    };

    /// <summary>
    /// Two decimals as wg's printf("%.2f") gives them: a value halfway between two hundredths
    /// (1,152 bytes are 1.125 KiB) rounds to even, 1.12, where .NET's format rounds away from zero.
    /// The amounts are a byte count over a power of two, so the scaling by 100 is exact below TiB.
    /// </summary>
    private static string Hundredths(double value) =>
        Math.Round(value, 2, MidpointRounding.ToEven).ToString("0.00", CultureInfo.InvariantCulture);
}
