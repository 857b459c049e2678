using Firezone.Actors.Host.Control;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// One peer's figures at the moment the tunnel it ran in was rebuilt (a new private key, listen port
/// or packet-buffer size; see <see cref="ActorTunnelControl"/>). The rebuilt tunnel's engine peer
/// counts from zero, so the status adds these: the transfer, ECN and drop counters and the latest
/// handshake carry on through the rebuild, as wireguard-go's do (it keeps its peers through such
/// changes). Dropped with the peer: a removed and re-added peer starts from zero, also in wireguard-go.
/// </summary>
internal sealed record CarriedPeerState(ulong RxBytes, ulong TxBytes, DateTimeOffset? LastHandshake, EcnCounters Ecn, PeerDropCounts Drops)
{
    public static CarriedPeerState Of(PeerStatus totals) => new(totals.RxBytes, totals.TxBytes, totals.LastHandshake, totals.Ecn, totals.Drops);

    /// <summary>These figures plus what the running engine peer counted since the rebuild.</summary>
    public PeerStatus AddTo(PeerStatus live) => live with
    {
        RxBytes = RxBytes + live.RxBytes,
        TxBytes = TxBytes + live.TxBytes,
        LastHandshake = live.LastHandshake ?? LastHandshake,
        Ecn = new EcnCounters(
            Ecn.EctSent + live.Ecn.EctSent,
            Ecn.CeReceived + live.Ecn.CeReceived,
            Ecn.CePropagated + live.Ecn.CePropagated,
            Ecn.EcnDrops + live.Ecn.EcnDrops,
            Ecn.AlarmEvents + live.Ecn.AlarmEvents),
        Drops = Drops + live.Drops,
    };
}
