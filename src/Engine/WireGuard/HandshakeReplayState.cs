namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// The replay and flood protection of initiations (whitepaper section 5.1: "the greatest TAI64N
/// timestamp received" per peer, and the last time an initiation was consumed) kept outside one
/// <see cref="Peer"/> instance, so a replacement instance for the same remote key (a supervisor
/// restart) still rejects an initiation captured before the restart. Without it a fresh peer starts
/// from timestamp zero and an attacker could replay an old initiation to make it answer and drop
/// its session. Written by one peer at a time; the lock only makes hand-over between instances safe.
/// </summary>
public sealed class HandshakeReplayState
{
    // A struct, not a Lock object (48 bytes with its reference, per configured peer): the critical
    // sections copy 12 bytes and are contended only when a restarted peer takes over.
    private SpinLock _gate = new(enableThreadOwnerTracking: false);
    private Tai64NStamp _greatestTimestamp; // inline: one per configured peer (see Bytes32)
    private TimeSpan? _lastInitiationConsumption;

    /// <summary>Records an accepted initiation, keeping the greatest timestamp and the latest consumption time.</summary>
    internal void Record(ReadOnlySpan<byte> timestamp, TimeSpan? consumedAt)
    {
        bool taken = false;
        try
        {
            _gate.Enter(ref taken);
            if (Tai64N.IsAfter(timestamp, _greatestTimestamp))
            {
                timestamp[..Tai64N.Size].CopyTo(_greatestTimestamp);
            }
            if (consumedAt is { } at && (_lastInitiationConsumption is not { } previous || at > previous))
            {
                _lastInitiationConsumption = at;
            }
        }
        finally
        {
            if (taken)
            {
                _gate.Exit();
            }
        }
    }

    /// <summary>Copies the state into a peer's handshake, where it only ever raises what is there.</summary>
    internal void RestoreInto(Span<byte> timestamp, ref TimeSpan? consumedAt)
    {
        bool taken = false;
        try
        {
            _gate.Enter(ref taken);
            if (Tai64N.IsAfter(_greatestTimestamp, timestamp))
            {
                ((ReadOnlySpan<byte>)_greatestTimestamp).CopyTo(timestamp);
            }
            if (_lastInitiationConsumption is { } at && (consumedAt is not { } current || at > current))
            {
                consumedAt = at;
            }
        }
        finally
        {
            if (taken)
            {
                _gate.Exit();
            }
        }
    }
}
