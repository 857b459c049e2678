namespace Firezone.Actors.Host.Control;

/// <summary>
/// What the daemon dropped or refused for one peer, counted since the peer was added (carried
/// through a rebuild, as its transfer is). wg show has no place for these, so a transfer that
/// does not match the other side's had no explanation without dotnet-counters.
/// </summary>
/// <param name="QueueFull">Packets and datagrams dropped because the peer's queue was full (its path fell behind).</param>
/// <param name="NotSent">Datagrams the socket did not send (no route, a firewall, a full buffer).</param>
/// <param name="SourceNotAllowed">Decrypted packets whose source address is in none of the peer's allowed IPs (cryptokey routing, whitepaper section 2).</param>
/// <param name="Refused">Datagrams that failed authentication, were replays or were malformed.</param>
/// <param name="OutboundRefused">Packets from the interface for this peer it refused (not valid IP, too large for a buffer, or empty).</param>
/// <param name="Restarts">Times the peer's connection was restarted after a fault.</param>
/// <param name="RestartDrops">Packets and datagrams that were queued for the peer when a fault closed its path.</param>
public readonly record struct PeerDropCounts(
    ulong QueueFull = 0,
    ulong NotSent = 0,
    ulong SourceNotAllowed = 0,
    ulong Refused = 0,
    ulong OutboundRefused = 0,
    ulong Restarts = 0,
    ulong RestartDrops = 0)
{
    public static PeerDropCounts operator +(PeerDropCounts a, PeerDropCounts b) => new(
        a.QueueFull + b.QueueFull,
        a.NotSent + b.NotSent,
        a.SourceNotAllowed + b.SourceNotAllowed,
        a.Refused + b.Refused,
        a.OutboundRefused + b.OutboundRefused,
        a.Restarts + b.Restarts,
        a.RestartDrops + b.RestartDrops);
}
