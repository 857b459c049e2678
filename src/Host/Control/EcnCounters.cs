namespace Firezone.Actors.Host.Control;

/// <summary>
/// A peer's ECN counters (RFC 6040): datagrams sent with an ECT outer header (copy-in, section
/// 4.1), datagrams received with a CE outer header, CE marks propagated into the inner packet
/// (copy-out, section 4.2), Not-ECT packets dropped because the outer header said CE, and the
/// combinations section 4.2 flags (!!!) as signs of a broken path.
/// </summary>
public readonly record struct EcnCounters(ulong EctSent, ulong CeReceived, ulong CePropagated, ulong EcnDrops, ulong AlarmEvents);
