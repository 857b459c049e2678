using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>Moving <see cref="Peer"/>'s sessions into the peer of a device rebuilt with the same key (<see cref="PeerHandover"/>).</summary>
public sealed partial class Peer
{
    /// <summary>
    /// Moves this peer's keypairs, handshake in flight, cookie and timers out, for a fresh peer of a
    /// device rebuilt with the same static key to <see cref="TakeOver"/> (see <see cref="PeerHandover"/>).
    /// This peer is left as if its keys had expired, with its held packets; dispose it next. Null when
    /// it is disposed. Only its owner calls it, and nothing may step this peer afterwards but Dispose.
    /// </summary>
    public PeerHandover? HandOver()
    {
        if (_disposed)
        {
            return null;
        }
        var handover = new PeerHandover(_device.PublicKey, PublicKey)
        {
            Current = _current,
            Previous = _previous,
            Next = _next,
            Handshake = _handshake,
            Cookies = _cookieGenerator,
            PrecomputedStaticStatic = _precomputedStaticStatic,
            RetransmitHandshakeAt = _retransmitHandshakeAt,
            SendKeepaliveAt = _sendKeepaliveAt,
            NewHandshakeAt = _newHandshakeAt,
            ZeroKeyMaterialAt = _zeroKeyMaterialAt,
            PersistentKeepaliveAt = _persistentKeepaliveAt,
            HandshakeAttempts = _handshakeAttempts,
            NeedAnotherKeepalive = _needAnotherKeepalive,
            SentLastMinuteHandshake = _sentLastMinuteHandshake,
            LastHandshakeUtc = _lastHandshakeUtc,
            Endpoint = _endpoint,
            LocalAddress = _localAddress,
        };
        // This device's table lets go of the indices; the taking device claims them.
        foreach (var keypair in (ReadOnlySpan<Keypair?>)[_current, _previous, _next])
        {
            if (keypair is not null)
            {
                _device.Indices.Free(keypair.LocalIndex, PublicKey);
            }
        }
        if (_handshake.HasLocalIndex)
        {
            _device.Indices.Free(_handshake.LocalIndex, PublicKey);
        }
        while (_stagedCount > 0)
        {
            var staged = _staged!;
            (handover.Staged ??= new List<PacketBuffer>(_stagedCount)).Add(staged[_stagedHead]!);
            staged[_stagedHead] = null;
            _stagedHead = (_stagedHead + 1) % staged.Length;
            _stagedCount--;
            _device.StagedBudget.Give();
        }
        _stagedHead = 0;
        _current = _previous = _next = null;
        _handshake = new Handshake();
        _cookieGenerator = null;
        _precomputedStaticStatic = null;
        _retransmitHandshakeAt = _sendKeepaliveAt = _newHandshakeAt = _zeroKeyMaterialAt = _persistentKeepaliveAt = null;
        _handshakeAttempts = 0;
        _needAnotherKeepalive = _sentLastMinuteHandshake = false;
        return handover;
    }

    /// <summary>
    /// Takes over what <see cref="HandOver"/> moved out of this peer's predecessor in a device with the
    /// same static key (an MTU rebuild), before <see cref="Start"/> and before any traffic: the
    /// sessions, the handshake in flight and the timers carry on, and the handover is emptied. Each
    /// receiver index is claimed in this device's table; one another peer took meanwhile drops what
    /// used it. False, and the handover disposed, when it is not this peer's (another remote key, or
    /// another static key: a new identity voids the sessions, section 5.4) or this peer has already
    /// handshaken.
    /// </summary>
    public bool TakeOver(PeerHandover handover, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(handover);
        if (_disposed || handover.PublicKey != PublicKey || handover.LocalStatic != _device.PublicKey
            || _current is not null || _next is not null || _previous is not null || _handshake.State != HandshakeState.Zeroed || _handshake.HasLocalIndex)
        {
            handover.Dispose();
            return false;
        }
        _current = Claimed(ref handover.Current);
        _previous = Claimed(ref handover.Previous);
        _next = Claimed(ref handover.Next);
        if (handover.Handshake is { } handshake)
        {
            if (handshake.HasLocalIndex && !_device.Indices.TryClaim(handshake.LocalIndex, PublicKey))
            {
                handshake.HasLocalIndex = false;
                handshake.Clear();
            }
            // The replay memory (section 5.1) is the greater of the two: this peer's came from the slot it was attached to.
            _replayState?.Record(handshake.LastTimestamp, handshake.LastInitiationConsumption);
            _replayState?.RestoreInto(handshake.LastTimestamp, ref handshake.LastInitiationConsumption);
            if (!Tai64N.IsAfter(handshake.LastTimestamp, _handshake.LastTimestamp))
            {
                _handshake.LastTimestamp.CopyTo(handshake.LastTimestamp);
            }
            handshake.LastSentHandshake ??= _handshake.LastSentHandshake;
            _handshake = handshake;
        }
        _cookieGenerator = handover.Cookies ?? _cookieGenerator;
        _precomputedStaticStatic = handover.PrecomputedStaticStatic ?? _precomputedStaticStatic;
        _retransmitHandshakeAt = handover.RetransmitHandshakeAt;
        _sendKeepaliveAt = handover.SendKeepaliveAt;
        _newHandshakeAt = handover.NewHandshakeAt;
        _zeroKeyMaterialAt = handover.ZeroKeyMaterialAt;
        _persistentKeepaliveAt = _config.PersistentKeepaliveSeconds > 0 ? handover.PersistentKeepaliveAt : null;
        _handshakeAttempts = handover.HandshakeAttempts;
        _needAnotherKeepalive = handover.NeedAnotherKeepalive;
        _sentLastMinuteHandshake = handover.SentLastMinuteHandshake;
        _lastHandshakeUtc = handover.LastHandshakeUtc;
        // The session goes on where it was used, from the local address the peer contacted (as
        // RestoreEndpoint after a restart); an endpoint configured since, elsewhere, wins without one.
        if (!handover.Endpoint.IsNone && (_endpoint.IsNone || _endpoint == handover.Endpoint))
        {
            _endpoint = handover.Endpoint;
            _localAddress = handover.LocalAddress;
        }
        if (handover.Staged is { } carried)
        {
            // Copied into this device's buffers: the old device's pool is dropped with it.
            foreach (var packet in carried)
            {
                if (packet.Length <= _device.Pool.BufferSize - PacketBuffer.Headroom - PacketBuffer.Tailroom && _device.Pool.TryRent(out var copy))
                {
                    copy.SetData(PacketBuffer.Headroom, packet.Length);
                    packet.Data.CopyTo(copy.Data);
                    copy.Ecn = packet.Ecn;
                    if (!Stage(copy))
                    {
                        copy.Return();
                    }
                }
                else
                {
                    Counters.StagedDropped++;
                }
                packet.Return();
            }
        }
        handover.Forget();
        if (_current is null && _next is null && _handshake.State == HandshakeState.Zeroed)
        {
            // Nothing usable came (every index was taken): the timers of a session that is gone would only misfire.
            _sendKeepaliveAt = _newHandshakeAt = null;
        }
        return true;
    }

    /// <summary>Claims <paramref name="keypair"/>'s receiver index here and takes it; disposes it when the index is taken.</summary>
    private Keypair? Claimed(ref Keypair? keypair)
    {
        var taken = keypair;
        keypair = null;
        if (taken is null || _device.Indices.TryClaim(taken.LocalIndex, PublicKey))
        {
            return taken;
        }
        taken.Dispose();
        return null;
    }
}
