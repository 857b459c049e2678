using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>Transport data of <see cref="Peer"/> (whitepaper section 5.4.6): padding, sealing, packets held for a session, keypair lookup, endpoint.</summary>
public sealed partial class Peer
{
    private bool HasRoomToSeal(PacketBuffer packet) =>
        packet.Offset >= MessageHeader.TransportHeaderSize
        && packet.Offset + PaddedLength(packet.Length) + MessageHeader.AeadTagSize <= packet.Capacity;

    /// <summary>
    /// Section 5.4.6: pad to a multiple of 16, but (as the kernel and wireguard-go do) never beyond
    /// the interface MTU when it is known.
    /// </summary>
    private int PaddedLength(int length)
    {
        int mtu = _device.Mtu;
        const int mask = ProtocolConstants.PaddingMultiple - 1;
        if (mtu <= 0)
        {
            return (length + mask) & ~mask;
        }
        int lastUnit = length > mtu ? length % mtu : length;
        int paddedUnit = Math.Min((lastUnit + mask) & ~mask, mtu);
        return length + Math.Max(0, paddedUnit - lastUnit);
    }

    private void SealWith(Keypair keypair, PacketBuffer packet, TimeSpan now)
    {
        int length = packet.Length;
        SealPayload(keypair, packet);
        AfterSealed(packet, length, now);
    }

    /// <summary>Section 5.4.6: header, padding and AEAD in place; the packet's data is then the transport message.</summary>
    private void SealPayload(Keypair keypair, PacketBuffer packet)
    {
        ulong counter = keypair.SendCounter++;
        int length = packet.Length;
        int padded = PaddedLength(length);
        keypair.Seal(packet.Memory, packet.Offset, length, padded, counter);
        packet.SetData(packet.Offset - MessageHeader.TransportHeaderSize, MessageHeader.TransportHeaderSize + padded + MessageHeader.AeadTagSize);
    }

    /// <summary>A packet of <paramref name="length"/> inner bytes was sealed: its destination, the transfer and the timers (section 6), a rekey if due.</summary>
    private void AfterSealed(PacketBuffer packet, int length, TimeSpan now)
    {
        packet.Endpoint = _endpoint;
        packet.LocalAddress = _localAddress;
        _txBytes += packet.Length;
        TimersAnyAuthenticatedPacketTraversal(now);
        TimersAnyAuthenticatedPacketSent();
        if (length > 0)
        {
            TimersDataSent(now);
        }
        else
        {
            Counters.KeepalivesSent++;
        }
        KeepKeyFreshSending(now);
    }

    /// <summary>
    /// Holds <paramref name="packet"/> until a session exists. With the queue full (as wireguard-go)
    /// or the device's budget spent (<see cref="StagedPacketBudget"/>), the oldest held packet makes
    /// room; false, and the packet still the caller's, when there is none to make room.
    /// </summary>
    private bool Stage(PacketBuffer packet)
    {
        var staged = _staged ??= new PacketBuffer?[ProtocolConstants.MaxStagedPackets];
        if (_stagedCount == staged.Length || !_device.StagedBudget.TryTake())
        {
            if (_stagedCount == 0)
            {
                Counters.StagedDropped++;
                return false;
            }
            // The oldest's place in the budget goes to the new packet.
            var oldest = staged[_stagedHead]!;
            staged[_stagedHead] = null;
            _stagedHead = (_stagedHead + 1) % staged.Length;
            _stagedCount--;
            oldest.Return();
            Counters.StagedDropped++;
        }
        staged[(_stagedHead + _stagedCount) % staged.Length] = packet;
        _stagedCount++;
        return true;
    }

    /// <summary>Takes <paramref name="packet"/> back out of the staged queue if it is its newest entry.</summary>
    private void Unstage(PacketBuffer packet)
    {
        if (_stagedCount == 0)
        {
            return;
        }
        var staged = _staged!;
        int newest = (_stagedHead + _stagedCount - 1) % staged.Length;
        if (ReferenceEquals(staged[newest], packet))
        {
            staged[newest] = null;
            _stagedCount--;
            _device.StagedBudget.Give();
        }
    }

    /// <summary>
    /// Seals every staged packet with the current keypair, or starts a handshake when there is none
    /// (wireguard-go's SendStagedPackets). <paramref name="callers"/>: the packet of the
    /// HandleTunPacket call this runs in, which stays its caller's if this throws.
    /// </summary>
    private void SendStagedPackets(TimeSpan now, PacketBuffer? callers = null)
    {
        while (_stagedCount > 0)
        {
            var keypair = _current;
            if (keypair is null || !keypair.CanSend(now))
            {
                SendHandshakeInitiation(now, isRetry: false);
                return;
            }
            var staged = _staged!; // non-null while _stagedCount > 0
            var packet = staged[_stagedHead]!;
            staged[_stagedHead] = null;
            _stagedHead = (_stagedHead + 1) % staged.Length;
            _stagedCount--;
            _device.StagedBudget.Give();
            int length = packet.Length;
            try
            {
                SealPayload(keypair, packet);
            }
            catch
            {
                // A fault of the AEAD (OpenSSL's can fail): the packet goes back to the head of the
                // queue, unsealed, so it still has one owner, this peer (Dispose returns it), and not none.
                _stagedHead = (_stagedHead + staged.Length - 1) % staged.Length;
                staged[_stagedHead] = packet;
                _stagedCount++;
                _device.StagedBudget.TakeBack();
                throw;
            }
            try
            {
                AfterSealed(packet, length, now);
            }
            catch when (!ReferenceEquals(packet, callers))
            {
                // Sealed, then the timers' step threw (a rekey's initiation): the packet is ready
                // to go and stays the peer's, queued as usual. The caller's own packet stays the caller's.
                (_transmit ??= new()).Enqueue(packet);
                throw;
            }
            (_transmit ??= new()).Enqueue(packet);
        }
    }

    private void FlushStagedPackets()
    {
        while (_stagedCount > 0)
        {
            var staged = _staged!; // non-null while _stagedCount > 0
            var packet = staged[_stagedHead]!;
            staged[_stagedHead] = null;
            _stagedHead = (_stagedHead + 1) % staged.Length;
            _stagedCount--;
            _device.StagedBudget.Give();
            packet.Return();
            Counters.StagedDropped++;
        }
        _stagedHead = 0;
    }

    /// <summary>Queues an empty transport message unless data is already staged (which serves the same purpose), then flushes.</summary>
    private void SendKeepalive(TimeSpan now)
    {
        if (_stagedCount == 0 && !_endpoint.IsNone)
        {
            if (!_device.Pool.TryRent(out var keepalive))
            {
                Counters.PoolExhausted++;
                return;
            }
            if (!Stage(keepalive)) // Length 0 at the headroom; Ecn Not-ECT.
            {
                keepalive.Return();
                return;
            }
        }
        SendStagedPackets(now);
    }

    private void Transmit(PacketBuffer buffer)
    {
        buffer.Endpoint = _endpoint;
        buffer.LocalAddress = _localAddress;
        buffer.Ecn = Ecn.NotEct;
        _txBytes += buffer.Length;
        (_transmit ??= new()).Enqueue(buffer);
    }

    private Keypair? FindKeypair(uint localIndex)
    {
        if (_current is { } current && current.LocalIndex == localIndex)
        {
            return current;
        }
        if (_next is { } next && next.LocalIndex == localIndex)
        {
            return next;
        }
        if (_previous is { } previous && previous.LocalIndex == localIndex)
        {
            return previous;
        }
        return null;
    }

    private void SetEndpoint(PacketBuffer datagram)
    {
        if (!datagram.Endpoint.IsNone)
        {
            _endpoint = datagram.Endpoint;
            _localAddress = datagram.LocalAddress;
        }
    }

    /// <summary>
    /// Before a handshake retried for want of an answer: send from the kernel's choice, in case the
    /// local address is the cause of trouble (still on the host, but no longer routed to the peer),
    /// as wireguard-go's markEndpointSrcForClearing and the kernel's timers.c do. The peer's next
    /// datagram sets it again.
    /// </summary>
    private void ClearLocalAddress() => _localAddress = default;

    private void DeleteKeypair(Keypair? keypair)
    {
        if (keypair is null)
        {
            return;
        }
        _device.Indices.Free(keypair.LocalIndex, PublicKey);
        keypair.Dispose();
    }

    private void FreeHandshakeIndex()
    {
        if (_handshake.HasLocalIndex)
        {
            _device.Indices.Free(_handshake.LocalIndex, PublicKey);
            _handshake.HasLocalIndex = false;
        }
    }

    /// <summary>Section 6.3 (and wireguard-go's ZeroAndFlushAll): forget every key and staged packet.</summary>
    private void ZeroAndFlushAll()
    {
        DeleteKeypair(_previous);
        DeleteKeypair(_current);
        DeleteKeypair(_next);
        _previous = _current = _next = null;
        FreeHandshakeIndex();
        _handshake.Clear();
        FlushStagedPackets();
    }

    private void KeepKeyFreshSending(TimeSpan now)
    {
        var keypair = _current;
        if (keypair is not null
            && (keypair.SendCounter > ProtocolConstants.RekeyAfterMessages
                || (keypair.IsInitiator && now - keypair.Created > ProtocolConstants.RekeyAfterTime)))
        {
            SendHandshakeInitiation(now, isRetry: false);
        }
    }

    /// <summary>Section 6.2: an initiator whose session nears Reject-After-Time rekeys on receive, once.</summary>
    private void KeepKeyFreshReceiving(TimeSpan now)
    {
        if (_sentLastMinuteHandshake)
        {
            return;
        }
        var keypair = _current;
        if (keypair is not null && keypair.IsInitiator
            && now - keypair.Created > ProtocolConstants.RejectAfterTime - ProtocolConstants.KeepaliveTimeout - ProtocolConstants.RekeyTimeout)
        {
            _sentLastMinuteHandshake = true;
            SendHandshakeInitiation(now, isRetry: false);
        }
    }
}
