using System.Buffers.Binary;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>The timers of <see cref="Peer"/> (whitepaper section 6), after wireguard-go's timers.go and the kernel's timers.c.</summary>
public sealed partial class Peer
{
    private void ExpiredRetransmitHandshake(TimeSpan now)
    {
        if (_handshakeAttempts > ProtocolConstants.MaxTimerHandshakes)
        {
            // Section 6.4: give up after Rekey-Attempt-Time; drop what waited for the session.
            Counters.HandshakeGiveUps++;
            _sendKeepaliveAt = null;
            FlushStagedPackets();
            _zeroKeyMaterialAt ??= now + 3 * ProtocolConstants.RejectAfterTime;
        }
        else
        {
            _handshakeAttempts++;
            ClearLocalAddress();
            SendHandshakeInitiation(now, isRetry: true);
        }
    }

    private void ExpiredSendKeepalive(TimeSpan now)
    {
        SendKeepalive(now);
        if (_needAnotherKeepalive)
        {
            _needAnotherKeepalive = false;
            _sendKeepaliveAt = now + ProtocolConstants.KeepaliveTimeout;
        }
    }

    /// <summary>
    /// Up to RekeyTimeoutJitterMaxMilliseconds of timer jitter (whitepaper section 6.1). It only
    /// spreads handshakes out and needs no secrecy, so it comes from a xorshift32 sequence seeded
    /// once from the device's random source (wireguard-go also uses a fast non-cryptographic
    /// generator here): the CSPRNG cost a call into OpenSSL and a getpid system call on the first
    /// packet sent after every reply.
    /// </summary>
    private TimeSpan Jitter()
    {
        uint x = _jitterState;
        Span<byte> bytes = stackalloc byte[4];
        while (x == 0)
        {
            _device.Random.Fill(bytes);
            x = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        }
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        _jitterState = x;
        return TimeSpan.FromMilliseconds(x % ProtocolConstants.RekeyTimeoutJitterMaxMilliseconds);
    }

    private void TimersDataSent(TimeSpan now) =>
        _newHandshakeAt ??= now + ProtocolConstants.KeepaliveTimeout + ProtocolConstants.RekeyTimeout + Jitter();

    private void TimersDataReceived(TimeSpan now)
    {
        if (_sendKeepaliveAt is null)
        {
            _sendKeepaliveAt = now + ProtocolConstants.KeepaliveTimeout;
        }
        else
        {
            _needAnotherKeepalive = true;
        }
    }

    private void TimersAnyAuthenticatedPacketSent() => _sendKeepaliveAt = null;

    private void TimersAnyAuthenticatedPacketReceived() => _newHandshakeAt = null;

    private void TimersHandshakeInitiated(TimeSpan now) =>
        _retransmitHandshakeAt = now + ProtocolConstants.RekeyTimeout + Jitter();

    private void TimersHandshakeComplete(TimeSpan now)
    {
        _retransmitHandshakeAt = null;
        _handshakeAttempts = 0;
        _sentLastMinuteHandshake = false;
        _lastHandshakeUtc = _device.WallClock(now);
    }

    private void TimersSessionDerived(TimeSpan now) => _zeroKeyMaterialAt = now + 3 * ProtocolConstants.RejectAfterTime;

    private void TimersAnyAuthenticatedPacketTraversal(TimeSpan now)
    {
        ushort interval = _config.PersistentKeepaliveSeconds;
        if (interval > 0)
        {
            _persistentKeepaliveAt = now + TimeSpan.FromSeconds(interval);
        }
    }

    private static bool IsDue(ref TimeSpan? deadline, TimeSpan now)
    {
        if (deadline is { } at && at <= now)
        {
            deadline = null;
            return true;
        }
        return false;
    }

    private static void Earliest(ref TimeSpan? earliest, TimeSpan? candidate)
    {
        if (candidate is { } value && (earliest is not { } current || value < current))
        {
            earliest = value;
        }
    }
}
