using System.Diagnostics.Metrics;
using Firezone.Actors.Engine;
using Firezone.Actors.Actors.Tunnel;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// Publishes the peer and device counters as System.Diagnostics.Metrics observable counters on the
/// meter "Firezone.Actors" (watch with `dotnet-counters monitor --counters Firezone.Actors -p PID`).
/// Observable instruments read the counters only when a listener collects, so the packet path pays
/// nothing. Each peer's measurements are tagged with its public key in base64.
/// </summary>
internal sealed class PeerMetrics : IDisposable
{
    public const string MeterName = "Firezone.Actors";

    private readonly Meter _meter = new(MeterName);
    private volatile PeerSlot[] _slots = [];

    private delegate long CounterReader(PeerCounters counters);

    public PeerMetrics(TunnelCounters device)
    {
        Peer("firezone.peer.packets.sent", "{packet}", "Inner packets sent into the tunnel", static c => PeerCounters.Read(ref c.TxPackets));
        Peer("firezone.peer.packets.received", "{packet}", "Inner packets received out of the tunnel", static c => PeerCounters.Read(ref c.RxPackets));
        Peer("firezone.peer.bytes.sent", "By", "Inner bytes sent into the tunnel", static c => PeerCounters.Read(ref c.TxPacketBytes));
        Peer("firezone.peer.bytes.received", "By", "Inner bytes received out of the tunnel", static c => PeerCounters.Read(ref c.RxPacketBytes));
        Peer("firezone.peer.datagrams.sent.ect0", "{datagram}", "Datagrams sent with outer ECT(0)", static c => c.DatagramsSentWith(Ecn.Ect0));
        Peer("firezone.peer.datagrams.sent.ect1", "{datagram}", "Datagrams sent with outer ECT(1)", static c => c.DatagramsSentWith(Ecn.Ect1));
        Peer("firezone.peer.datagrams.sent.ce", "{datagram}", "Datagrams sent with outer CE", static c => c.DatagramsSentWith(Ecn.Ce));
        Peer("firezone.peer.datagrams.received.ce", "{datagram}", "Authenticated datagrams received with outer CE", static c => PeerCounters.Read(ref c.CeDatagramsReceived));
        Peer("firezone.peer.ecn.ce_propagated", "{packet}", "CE marks copied into inner packets (RFC 6040 4.2)", static c => PeerCounters.Read(ref c.CeMarksPropagated));
        Peer("firezone.peer.ecn.drops", "{packet}", "Not-ECT inner packets dropped for outer CE (RFC 6040 4.2)", static c => PeerCounters.Read(ref c.EcnDrops));
        Peer("firezone.peer.ecn.unexpected", "{packet}", "(!!!) combinations of RFC 6040 4.2", static c => PeerCounters.Read(ref c.EcnUnexpected));
        Peer("firezone.peer.authentication_failures", "{datagram}", "Transport datagrams whose tag did not verify", static c => PeerCounters.Read(ref c.AuthenticationFailures));
        Peer("firezone.peer.rejected", "{datagram}", "Replayed, no-keypair, source-not-allowed and malformed datagrams", static c =>
            PeerCounters.Read(ref c.ReplayedRejected) + PeerCounters.Read(ref c.NoKeypairRejected) + PeerCounters.Read(ref c.SourceNotAllowedRejected) + PeerCounters.Read(ref c.MalformedRejected));
        Peer("firezone.peer.packets.dropped.queue_full", "{packet}", "Packets dropped because the peer's actor-path queue was full", static c => PeerCounters.Read(ref c.QueueFullDrops));
        Peer("firezone.peer.packets.dropped.restarting", "{packet}", "Packets and datagrams queued for the peer when a fault closed its path (dropped with it)", static c => PeerCounters.Read(ref c.RestartDrops));
        Peer("firezone.peer.datagrams.not_sent", "{datagram}", "Datagrams the socket did not send (no route, a firewall, a full buffer); not in the peer's transfer", static c => PeerCounters.Read(ref c.DatagramsNotSent));
        Peer("firezone.peer.restarts", "{restart}", "PeerConnection restarts after a fault", static c => PeerCounters.Read(ref c.Restarts));
        _meter.CreateObservableCounter("firezone.device.tun.no_route", () => device.TunPacketsNoRouteCount, "{packet}", "TUN packets to a unicast address no peer's allowed IPs hold");
        _meter.CreateObservableCounter("firezone.device.tun.no_route.multicast", () => device.TunPacketsNoRouteMulticastCount, "{packet}", "TUN packets to a multicast or broadcast address no peer's allowed IPs hold");
        _meter.CreateObservableCounter("firezone.device.datagrams.invalid", () => device.DatagramsInvalidCount, "{datagram}", "Datagrams that are no WireGuard message");
        _meter.CreateObservableCounter("firezone.device.datagrams.unknown_receiver", () => device.DatagramsUnknownReceiverCount, "{datagram}", "Datagrams for an unknown receiver index");
        _meter.CreateObservableCounter("firezone.device.handshakes.dropped.queue_full", () => device.HandshakesQueueFullCount, "{datagram}", "Initiations dropped because the handshake queue was full (a flood)");
        _meter.CreateObservableCounter("firezone.device.handshakes.rejected", () => device.HandshakesRejectedCount, "{datagram}", "Initiations refused by the mac1 check, or under load for want of a buffer for the cookie reply (whitepaper 5.3)");
        _meter.CreateObservableCounter("firezone.device.handshakes.rate_limited", () => device.HandshakesRateLimitedCount, "{datagram}", "Initiations under load with a valid cookie (mac2) from an address that sent more than 20 a second, bursts of 5");
        _meter.CreateObservableCounter("firezone.device.handshakes.unknown_peer", () => device.HandshakesUnknownPeerCount, "{datagram}", "Initiations that do not decrypt or come from no configured peer");
        _meter.CreateObservableCounter("firezone.device.handshakes.cookie_replies", () => device.CookieRepliesSentCount, "{datagram}", "Cookie replies sent under load (whitepaper 5.3)");
        _meter.CreateObservableCounter("firezone.device.datagrams.too_large", () => device.DatagramsTooLargeCount, "{datagram}", "Datagrams dropped on receive for want of a large enough buffer");
        _meter.CreateObservableCounter("firezone.device.datagrams.control_truncated", () => device.DatagramsControlTruncatedCount, "{read}", "Reads dropped on receive because the kernel cut their control data (MSG_CTRUNC): their ECN codepoint or GRO segment size may be missing");
        _meter.CreateObservableCounter("firezone.device.datagrams.receive_errors", () => device.DatagramsReceiveErrorsCount, "{read}", "Socket reads the kernel refused with an errno that leaves the socket usable (ENOMEM...); the reads go on after a short pause");
        _meter.CreateObservableCounter("firezone.device.datagrams.gso_refused", () => device.GsoRefusedCount, "{message}", "GSO sends the kernel refused (a path MTU below the segment, or no offload on the route); their datagrams went one by one");
        _meter.CreateObservableCounter("firezone.device.datagrams.source_dropped", () => device.DatagramsSourceDroppedCount, "{message}", "Send messages whose source address (the one the peer contacted) was gone from the host, sent again from the kernel's choice");
        _meter.CreateObservableCounter("firezone.device.tun.read_dropped", () => device.TunReadDroppedCount, "{packet}", "TUN reads dropped by the device (malformed offload headers, longer than the buffers)");
    }

    /// <summary>Replaces the set of observed peers (copy-on-write; called by the supervisor on add/remove).</summary>
    public void SetPeers(PeerSlot[] slots) => _slots = slots;

    private void Peer(string name, string unit, string description, CounterReader read)
    {
        _meter.CreateObservableCounter(name, () => Observe(read), unit, description);
    }

    private IEnumerable<Measurement<long>> Observe(CounterReader read)
    {
        var slots = _slots;
        var measurements = new Measurement<long>[slots.Length];
        for (int i = 0; i < slots.Length; i++)
        {
            measurements[i] = new Measurement<long>(read(slots[i].Counters), new KeyValuePair<string, object?>("peer", slots[i].KeyBase64));
        }
        return measurements;
    }

    public void Dispose() => _meter.Dispose();
}
