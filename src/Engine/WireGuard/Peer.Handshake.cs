using System.Buffers.Binary;
using System.Security.Cryptography;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>The Noise IKpsk2 handshake of <see cref="Peer"/> (whitepaper section 5.4): initiation, response, cookie reply, the keypairs they derive.</summary>
public sealed partial class Peer
{
    private void SendHandshakeInitiation(TimeSpan now, bool isRetry)
    {
        if (!isRetry)
        {
            _handshakeAttempts = 0;
        }
        // Section 6.4: at most one initiation per Rekey-Timeout.
        if (_handshake.LastSentHandshake is { } last && now - last < ProtocolConstants.RekeyTimeout)
        {
            return;
        }
        if (_endpoint.IsNone)
        {
            // Nowhere to send it: a Gateway's Client that has not connected yet. As in wireguard-go,
            // whose send fails here, the attempt still counts: the packets this peer holds wait for
            // the Client's own handshake (its confirmation sends them) and are dropped when the
            // attempts give up after Rekey-Attempt-Time. The first deadline stands while packets
            // keep coming, so the timer fires every Rekey-Timeout; LastSentHandshake stays unset, so
            // an endpoint configured meanwhile gets an initiation with the next packet.
            _retransmitHandshakeAt ??= now + ProtocolConstants.RekeyTimeout + Jitter();
            return;
        }
        if (!_device.Pool.TryRent(out var buffer))
        {
            // Nothing was sent, so the Rekey-Timeout rate limit (keyed on LastSentHandshake) must not
            // start: a later packet or Connect may try again at once. Arm the retransmit timer anyway,
            // so the attempt is retried (and counted toward giving up, section 6.4) even if no further
            // trigger comes.
            Counters.PoolExhausted++;
            TimersHandshakeInitiated(now);
            return;
        }
        _handshake.LastSentHandshake = now;
        FreeHandshakeIndex();
        uint senderIndex = _device.Indices.Allocate(PublicKey, _device.Random);
        _handshake.LocalIndex = senderIndex;
        _handshake.HasLocalIndex = true;

        buffer.SetData(PacketBuffer.Headroom, MessageHeader.InitiationSize);
        Span<byte> timestamp = stackalloc byte[Tai64N.Size];
        Tai64N.Write(_device.WallClock(now), timestamp);
        Span<byte> remoteStatic = stackalloc byte[WireGuardKey.Size];
        PublicKey.CopyTo(remoteStatic);
        bool created;
        try
        {
            created = Noise.CreateInitiation(_handshake, _device.StaticPublic, remoteStatic, PrecomputedStaticStatic, timestamp, senderIndex, _device.Random, _device.X25519, buffer.Data);
        }
        catch
        {
            buffer.Return(); // not lost to the pool when the X25519 underneath throws
            throw;
        }
        if (!created)
        {
            buffer.Return();
            FreeHandshakeIndex();
            _handshake.Clear();
            Counters.HandshakeRejections++;
            return;
        }
        Cookies.AddMacs(buffer.Data, now);
        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketSent();
        Transmit(buffer);
        Counters.HandshakeInitiationsSent++;
        TimersHandshakeInitiated(now);
    }

    private HandshakeResult ConsumeInitiation(PacketBuffer datagram, TimeSpan now)
    {
        ReadOnlySpan<byte> message = datagram.Data;
        Span<byte> chainKey = stackalloc byte[32];
        Span<byte> hash = stackalloc byte[32];
        Span<byte> remoteStatic = stackalloc byte[32];
        Span<byte> configuredStatic = stackalloc byte[WireGuardKey.Size];
        PublicKey.CopyTo(configuredStatic);
        Span<byte> timestamp = stackalloc byte[Tai64N.Size];
        try
        {
            // The device usually decrypted msg.static already, to find this peer (InitiationStash).
            if (!(InitiationStash.TryTake(datagram, _device, chainKey, hash, remoteStatic)
                    || Noise.TryConsumeInitiationStatic(message, _device.StaticKey, _device.StaticPublic, chainKey, hash, remoteStatic))
                || !CryptographicOperations.FixedTimeEquals(remoteStatic, configuredStatic)
                || !Noise.TryConsumeInitiationTimestamp(message, PrecomputedStaticStatic, chainKey, hash, timestamp))
            {
                Counters.HandshakeRejections++;
                return HandshakeResult.Rejected;
            }
            if (!Tai64N.IsAfter(timestamp, _handshake.LastTimestamp))
            {
                Counters.ReplayedTimestamps++;
                return HandshakeResult.ReplayedTimestamp;
            }
            if (_handshake.LastInitiationConsumption is { } previous && now - previous <= ProtocolConstants.HandshakeInitiationRate)
            {
                Counters.HandshakeFloods++;
                return HandshakeResult.Rejected;
            }

            chainKey.CopyTo(_handshake.ChainKey);
            hash.CopyTo(_handshake.Hash);
            message.Slice(MessageLayout.InitiationEphemeral, 32).CopyTo(_handshake.RemoteEphemeral);
            _handshake.RemoteIndex = BinaryPrimitives.ReadUInt32LittleEndian(message[MessageLayout.InitiationSender..]);
            timestamp.CopyTo(_handshake.LastTimestamp);
            _handshake.LastInitiationConsumption = now;
            _replayState?.Record(timestamp, now);
            _handshake.State = HandshakeState.InitiationConsumed;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(chainKey);
            CryptographicOperations.ZeroMemory(hash);
        }

        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketReceived();
        SetEndpoint(datagram);
        _rxBytes += message.Length;
        SendHandshakeResponse(now);
        return HandshakeResult.Accepted;
    }

    private void SendHandshakeResponse(TimeSpan now)
    {
        _handshake.LastSentHandshake = now;
        if (!_device.Pool.TryRent(out var buffer))
        {
            Counters.PoolExhausted++;
            _handshake.Clear();
            return;
        }
        FreeHandshakeIndex();
        uint senderIndex = _device.Indices.Allocate(PublicKey, _device.Random);
        _handshake.LocalIndex = senderIndex;
        _handshake.HasLocalIndex = true;
        buffer.SetData(PacketBuffer.Headroom, MessageHeader.ResponseSize);
        Span<byte> remoteStatic = stackalloc byte[WireGuardKey.Size];
        PublicKey.CopyTo(remoteStatic);
        Span<byte> presharedKey = stackalloc byte[WireGuardKey.Size];
        CopyPresharedKey(presharedKey);
        bool created = Noise.CreateResponse(_handshake, remoteStatic, presharedKey, senderIndex, _device.Random, _device.X25519, buffer.Data);
        CryptographicOperations.ZeroMemory(presharedKey);
        if (!created)
        {
            buffer.Return();
            FreeHandshakeIndex();
            _handshake.Clear();
            Counters.HandshakeRejections++;
            return;
        }
        Cookies.AddMacs(buffer.Data, now);
        BeginSymmetricSession(now);
        TimersSessionDerived(now);
        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketSent();
        Transmit(buffer);
        Counters.HandshakeResponsesSent++;
    }

    private HandshakeResult ConsumeResponse(PacketBuffer datagram, uint receiver, TimeSpan now)
    {
        if (_handshake.State != HandshakeState.InitiationCreated || !_handshake.HasLocalIndex || _handshake.LocalIndex != receiver)
        {
            Counters.UnexpectedMessages++;
            return HandshakeResult.Unexpected;
        }
        Span<byte> presharedKey = stackalloc byte[WireGuardKey.Size];
        CopyPresharedKey(presharedKey);
        bool consumed = Noise.TryConsumeResponse(_handshake, datagram.Data, _device.StaticKey, _device.X25519, presharedKey);
        CryptographicOperations.ZeroMemory(presharedKey);
        if (!consumed)
        {
            Counters.HandshakeRejections++;
            return HandshakeResult.Rejected;
        }
        SetEndpoint(datagram);
        _rxBytes += datagram.Length;
        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketReceived();
        BeginSymmetricSession(now);
        TimersSessionDerived(now);
        TimersHandshakeComplete(now);
        Counters.HandshakesCompleted++;
        // Section 6.5: confirm the session at once (with staged data, or an empty keepalive).
        SendKeepalive(now);
        return HandshakeResult.Accepted;
    }

    private HandshakeResult ConsumeCookieReply(PacketBuffer datagram, uint receiver, TimeSpan now)
    {
        bool known = (_handshake.HasLocalIndex && _handshake.LocalIndex == receiver) || FindKeypair(receiver) is not null;
        if (!known)
        {
            Counters.UnexpectedMessages++;
            return HandshakeResult.Unexpected;
        }
        if (!Cookies.TryConsumeReply(datagram.Data, now))
        {
            Counters.HandshakeRejections++;
            return HandshakeResult.Rejected;
        }
        Counters.CookiesReceived++;
        return HandshakeResult.Accepted;
    }

    /// <summary>Derives the transport keypair from the finished handshake and rotates keypairs (wireguard-go's BeginSymmetricSession).</summary>
    private void BeginSymmetricSession(TimeSpan now)
    {
        bool isInitiator;
        if (_handshake.State == HandshakeState.ResponseConsumed)
        {
            isInitiator = true;
        }
        else if (_handshake.State == HandshakeState.ResponseCreated)
        {
            isInitiator = false;
        }
        else
        {
            return;
        }
        Span<byte> sendKey = stackalloc byte[32];
        Span<byte> receiveKey = stackalloc byte[32];
        Keypair keypair;
        try
        {
            Noise.DeriveTransportKeys(_handshake.ChainKey, isInitiator, sendKey, receiveKey);
            keypair = new Keypair(_device.TransportAead, sendKey, receiveKey, isInitiator, _handshake.LocalIndex, _handshake.RemoteIndex, now);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(sendKey);
            CryptographicOperations.ZeroMemory(receiveKey);
        }
        // The handshake's index now belongs to the keypair (same owner in the device's table).
        _handshake.HasLocalIndex = false;
        _handshake.Clear();

        if (isInitiator)
        {
            var oldPrevious = _previous;
            if (_next is not null)
            {
                _previous = _next;
                _next = null;
                DeleteKeypair(_current);
            }
            else
            {
                _previous = _current;
            }
            DeleteKeypair(oldPrevious);
            _current = keypair;
        }
        else
        {
            DeleteKeypair(_next);
            _next = keypair;
            DeleteKeypair(_previous);
            _previous = null;
        }
    }
}
