using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// An immutable snapshot of one peer: what `wg show` prints (endpoint, latest handshake, transfer,
/// allowed IPs, persistent keepalive) plus the ECN and rejection counters for `show`.
/// </summary>
public sealed record PeerStatus
{
    public required WireGuardKey PublicKey { get; init; }
    /// <summary>The configuration in force (UAPI get prints it back: preshared key, keepalive, allowed IPs...).</summary>
    public required PeerConfig Config { get; init; }
    public required UdpEndpoint Endpoint { get; init; }
    public required DateTime? LastHandshakeUtc { get; init; }
    /// <summary>Datagram bytes received and sent (wg show "transfer").</summary>
    public required long RxBytes { get; init; }
    public required long TxBytes { get; init; }
    public required IReadOnlyList<IpPrefix> AllowedIps { get; init; }
    public required ushort PersistentKeepaliveSeconds { get; init; }
    public required EcnMode EcnMode { get; init; }
    public required bool HasPresharedKey { get; init; }

    /// <summary>
    /// Inner packets and bytes sent into the tunnel (counted when sealed into a datagram, so not a
    /// packet the engine dropped while it waited for a handshake) and received out of it.
    /// </summary>
    public required long TxPackets { get; init; }
    public required long TxPacketBytes { get; init; }
    public required long RxPackets { get; init; }
    public required long RxPacketBytes { get; init; }

    /// <summary>Datagrams sent per outer codepoint (copy-in, RFC 6040 section 4.1).</summary>
    public required long DatagramsSentNotEct { get; init; }
    public required long DatagramsSentEct0 { get; init; }
    public required long DatagramsSentEct1 { get; init; }
    public required long DatagramsSentCe { get; init; }
    /// <summary>Datagrams sent with any ECN-capable outer codepoint (ECT(0), ECT(1) or CE).</summary>
    public long EctDatagramsSent => DatagramsSentEct0 + DatagramsSentEct1 + DatagramsSentCe;

    /// <summary>Authenticated datagrams that arrived with outer CE.</summary>
    public required long CeDatagramsReceived { get; init; }
    /// <summary>Inner packets turned from ECT into CE by copy-out (RFC 6040 section 4.2).</summary>
    public required long CeMarksPropagated { get; init; }
    /// <summary>Not-ECT inner with CE outer: dropped (RFC 6040 section 4.2).</summary>
    public required long EcnDrops { get; init; }
    /// <summary>(!!!) combinations of the RFC 6040 section 4.2 table, drops included.</summary>
    public required long EcnUnexpected { get; init; }

    public required long AuthenticationFailures { get; init; }
    public required long ReplayedRejected { get; init; }
    public required long NoKeypairRejected { get; init; }
    public required long SourceNotAllowedRejected { get; init; }
    public required long MalformedRejected { get; init; }
    public required long HandshakesRejected { get; init; }
    /// <summary>Outbound packets the engine refused (too large for the buffer, or empty).</summary>
    public required long OutboundDropped { get; init; }
    /// <summary>Outbound packets that were not valid IP.</summary>
    public required long OutboundInvalid { get; init; }
    /// <summary>Packets dropped because the peer's actor path already held <see cref="PeerSlot.MaxBacklogPackets"/> (a slow or stuck peer).</summary>
    public long QueueFullDrops { get; init; }
    /// <summary>Packets and datagrams queued for the peer's actor when a fault closed its path: dropped with the faulted engine state (the restart starts a new session).</summary>
    public long RestartDrops { get; init; }
    /// <summary>Datagrams for this peer the socket did not send (no route, a firewall, a full buffer); not in <see cref="TxBytes"/>.</summary>
    public long DatagramsNotSent { get; init; }
    /// <summary>Times this peer's connection was restarted after a fault.</summary>
    public required long Restarts { get; init; }

    internal static PeerStatus From(PeerSlot slot, IReadOnlyList<IpPrefix> allowedIps)
    {
        var c = slot.Counters;
        var config = slot.Config;
        // Pending read before the view: the connection publishes its view before it marks the move
        // applied, so a move applied between the two reads is reported from the config, never the old view.
        bool movePending = slot.EndpointMovePending;
        var engine = c.ReadEngineView();
        return new PeerStatus
        {
            PublicKey = slot.Key,
            Config = config,
            // The configured endpoint also while an update that moves the peer there waits for its
            // connection (PeerSlot.EndpointMovePending): the engine's view is the old one until then.
            Endpoint = engine.Endpoint.IsNone || movePending ? config.Endpoint : engine.Endpoint,
            LastHandshakeUtc = engine.LastHandshakeUtc,
            RxBytes = engine.RxBytes,
            TxBytes = engine.TxBytes,
            AllowedIps = allowedIps,
            PersistentKeepaliveSeconds = config.PersistentKeepaliveSeconds,
            EcnMode = config.EcnMode,
            HasPresharedKey = config.PresharedKey is { IsZero: false },
            TxPackets = PeerCounters.Read(ref c.TxPackets),
            TxPacketBytes = PeerCounters.Read(ref c.TxPacketBytes),
            RxPackets = PeerCounters.Read(ref c.RxPackets),
            RxPacketBytes = PeerCounters.Read(ref c.RxPacketBytes),
            DatagramsSentNotEct = c.DatagramsSentWith(Ecn.NotEct),
            DatagramsSentEct0 = c.DatagramsSentWith(Ecn.Ect0),
            DatagramsSentEct1 = c.DatagramsSentWith(Ecn.Ect1),
            DatagramsSentCe = c.DatagramsSentWith(Ecn.Ce),
            CeDatagramsReceived = PeerCounters.Read(ref c.CeDatagramsReceived),
            CeMarksPropagated = PeerCounters.Read(ref c.CeMarksPropagated),
            EcnDrops = PeerCounters.Read(ref c.EcnDrops),
            EcnUnexpected = PeerCounters.Read(ref c.EcnUnexpected),
            AuthenticationFailures = PeerCounters.Read(ref c.AuthenticationFailures),
            ReplayedRejected = PeerCounters.Read(ref c.ReplayedRejected),
            NoKeypairRejected = PeerCounters.Read(ref c.NoKeypairRejected),
            SourceNotAllowedRejected = PeerCounters.Read(ref c.SourceNotAllowedRejected),
            MalformedRejected = PeerCounters.Read(ref c.MalformedRejected),
            HandshakesRejected = PeerCounters.Read(ref c.HandshakesRejected),
            OutboundDropped = PeerCounters.Read(ref c.OutboundDropped),
            OutboundInvalid = PeerCounters.Read(ref c.OutboundInvalid),
            QueueFullDrops = PeerCounters.Read(ref c.QueueFullDrops),
            RestartDrops = PeerCounters.Read(ref c.RestartDrops),
            DatagramsNotSent = PeerCounters.Read(ref c.DatagramsNotSent),
            Restarts = PeerCounters.Read(ref c.Restarts),
        };
    }
}
