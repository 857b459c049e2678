using System.Buffers.Binary;
using System.Text;
using FsCheck.Xunit;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Packets;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>
/// Hostile datagrams from the network into a real session (FsCheck over <see cref="WireHarness"/>):
/// random bytes, every message type with its fields randomised (and a valid mac1, so they reach the
/// Noise layer), transport messages of the live session with a corrupted counter or ciphertext, and
/// transport messages sealed with the live keys whose decrypted payload is hostile. Each datagram
/// goes the way the socket reader sends it (<see cref="Deliver"/>). What must hold: nothing throws,
/// every buffer comes back to its pool exactly once, every refusal is counted exactly once, a packet
/// is delivered only when it authenticates, its IP header's length is exactly the bytes delivered,
/// and its source is in the peer's allowed IPs; and the session still works afterwards.
/// </summary>
public class DeviceFuzzTests
{
    private static readonly byte[] AllowedSourceA4 = WireHarness.AddressA;
    private static readonly byte[] AllowedSourceA6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    private static readonly UdpEndpoint Stranger = UdpEndpoint.FromIPv4([203, 0, 113, 9], 4242);

    /// <summary>What one datagram did at the receiving node.</summary>
    private readonly record struct Outcome(MessageType Type, HandshakeAdmission? Admission, HandshakeResult? Handshake, OpenResult? Open, byte[]? Delivered);

    // ---- random datagrams --------------------------------------------------------------------

    [Property(MaxTest = 250)]
    public bool Any_datagram_is_refused_counted_and_its_buffer_returned(byte[] body, byte typeChoice, byte sizeChoice, bool aimAtLiveIndex,
        bool underLoad, bool toInitiator)
    {
        body ??= [];
        int[] sizes = [0, 1, 3, 4, 15, 16, 31, 32, 33, 47, 48, 63, 64, 65, 91, 92, 93, 147, 148, 149, 200, 1500, body.Length];
        byte type = (byte)(typeChoice % 6);
        int size = (sizeChoice & 1, type) switch
        {
            // Half the time exactly the size of the type chosen, so the datagram gets past Classify.
            (0, 1) => MessageHeader.InitiationSize,
            (0, 2) => MessageHeader.ResponseSize,
            (0, 3) => MessageHeader.CookieReplySize,
            (0, 4) => MessageHeader.TransportMinSize + sizeChoice % 200,
            _ => sizes[(sizeChoice >> 1) % sizes.Length],
        };
        var bytes = Fill(body, size);
        if (size >= 4 && typeChoice % 4 != 0)
        {
            bytes[0] = type;
            bytes[1] = bytes[2] = bytes[3] = 0;
            if ((typeChoice & 0x40) != 0)
            {
                bytes[2] = 1; // a reserved byte set: invalid whatever the type
            }
        }
        var wire = Session(typeChoice);
        var node = toInitiator ? wire.A : wire.B;
        if (aimAtLiveIndex && size >= 12)
        {
            // The receiver index of the live session, so decryption is attempted.
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(bytes[0] == 2 ? 8 : 4), node.Peer.CurrentKeypair!.LocalIndex);
        }
        var outcome = Deliver(wire, node, bytes, Ecn.NotEct, underLoad);
        bool refused = outcome.Open is null or not (OpenResult.Packet or OpenResult.Keepalive)
            && outcome.Handshake is null or not HandshakeResult.Accepted;
        return refused && StillWorks(wire, node) && NoLeaks(wire);
    }

    // ---- handshake messages that reach the Noise layer --------------------------------------

    [Property(MaxTest = 250)]
    public bool Handshake_messages_with_a_valid_mac1_are_refused_unless_genuine_and_always_counted(byte[] body, byte typeChoice, byte field,
        byte value, bool underLoad, byte timestampShift)
    {
        body ??= [];
        var wire = Session(typeChoice);
        // A handshake of B in flight, so responses and cookie replies to its index reach the peer.
        wire.AdvanceTo(TimeSpan.FromSeconds(6));
        wire.B.Peer.Connect(wire.Now);
        Assert.True(wire.B.Peer.PollTransmit(out var initiationOfB));
        uint pendingIndex = BinaryPrimitives.ReadUInt32LittleEndian(initiationOfB.Data[MessageLayout.InitiationSender..]);
        initiationOfB.Return();

        byte[] message;
        bool genuine = false;
        switch (typeChoice % 4)
        {
            case 0: // an initiation, every field random
                message = Fill(body, MessageHeader.InitiationSize);
                break;
            case 1: // a real initiation from A's static key, its timestamp moved, perhaps one byte changed
            {
                byte[] timestamp = ReferenceWireGuard.Tai64N(wire.WallClockAtZero + TimeSpan.FromSeconds(timestampShift - 128));
                message = ReferenceWireGuard.CreateInitiation(KeyBytes(wire.PrivateA), KeyBytes(wire.B.Device.PublicKey),
                    ReferenceWireGuard.KeyBytes(value + 1000), 0x01020304u + value, timestamp, out _);
                int at = 4 + field % (MessageLayout.InitiationMac1 - 4);
                bool tampered = (field & 1) != 0;
                if (tampered)
                {
                    message[at] ^= (byte)(value | 1);
                }
                // Newer than the one accepted at time 0, past the flood limit, and untouched but for
                // the sender index (which nothing authenticates but mac1): genuine.
                genuine = (!tampered || at < MessageLayout.InitiationEphemeral) && timestampShift > 128;
                break;
            }
            case 2: // a response to B's pending handshake, every other field random
                message = Fill(body, MessageHeader.ResponseSize);
                BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(MessageLayout.ResponseReceiver), pendingIndex);
                break;
            default: // a cookie reply to B's pending handshake or its live keypair
                message = Fill(body, MessageHeader.CookieReplySize);
                BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(MessageLayout.CookieReceiver),
                    (field & 1) == 0 ? pendingIndex : wire.B.Peer.CurrentKeypair!.LocalIndex);
                break;
        }
        message[0] = (byte)((typeChoice % 4) switch { 0 or 1 => MessageType.Initiation, 2 => MessageType.Response, _ => MessageType.CookieReply });
        message[1] = message[2] = message[3] = 0;
        if (message[0] != (byte)MessageType.CookieReply)
        {
            WriteMac1(message, wire.B.Device.PublicKey);
        }
        var outcome = Deliver(wire, wire.B, message, Ecn.NotEct, underLoad);
        bool accepted = outcome.Handshake == HandshakeResult.Accepted;
        // Under load a genuine initiation without mac2 gets a cookie reply instead (section 5.3).
        bool expected = genuine && !underLoad;
        return accepted == expected && StillWorks(wire, wire.B) && NoLeaks(wire);
    }

    // ---- transport messages of the live session, corrupted ----------------------------------

    [Property(MaxTest = 300)]
    public bool Corrupted_transport_messages_never_deliver_and_never_spoil_the_replay_window(byte mutation, ulong counter, ushort position,
        byte value, byte[] extra, ushort innerLength)
    {
        extra ??= [];
        var wire = Session(mutation);
        byte[] original = SealOnA(wire, wire.PacketFrom(wire.A, 20 + innerLength % 200, tag: value));
        byte[] bytes = (byte[])original.Clone();
        switch (mutation % 6)
        {
            case 0: // another counter: a forged nonce (or one at or past Reject-After-Messages)
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(MessageLayout.TransportCounter),
                    (value & 1) == 0 ? counter : ProtocolConstants.RejectAfterMessages + (counter & 0xFF));
                break;
            case 1: // a ciphertext or tag byte
                bytes[MessageHeader.TransportHeaderSize + position % (bytes.Length - MessageHeader.TransportHeaderSize)] ^= (byte)(value | 1);
                break;
            case 2: // truncated
                bytes = bytes[..(position % bytes.Length)];
                break;
            case 3: // extended
                bytes = [.. bytes, .. extra.Length == 0 ? [value] : extra];
                break;
            case 4: // another receiver index
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(MessageLayout.TransportReceiver), counter == 0 ? 1u : (uint)counter);
                break;
            default: // the same datagram twice (a replay)
                break;
        }
        bool unchanged = bytes.AsSpan().SequenceEqual(original);
        var outcome = Deliver(wire, wire.B, bytes, Ecn.NotEct, underLoad: false);
        if (unchanged)
        {
            if (outcome.Open != OpenResult.Packet || Deliver(wire, wire.B, original, Ecn.NotEct, false).Open != OpenResult.Replayed)
            {
                return false;
            }
        }
        else if (outcome.Open is OpenResult.Packet or OpenResult.Keepalive
            || Deliver(wire, wire.B, original, Ecn.NotEct, false).Open != OpenResult.Packet)
        {
            return false; // delivered a forgery, or the forgery moved the window past the real message
        }
        return StillWorks(wire, wire.B) && NoLeaks(wire);
    }

    // ---- authenticated, but the payload is hostile -------------------------------------------

    [Property(MaxTest = 600)]
    public bool Decrypted_payloads_are_delivered_only_as_the_ip_header_says(byte kind, byte[] body, byte firstByte, ushort lengthField,
        byte lengthChoice, bool allowedSource, byte padding, byte outerEcn)
    {
        body ??= [];
        byte[] inner = HostileInner(kind, body, firstByte, lengthField, lengthChoice, allowedSource);
        var wire = Session(kind);
        var keypair = wire.A.Peer.CurrentKeypair!;
        int pad = padding % 32;
        // Sealed with the live keys, with any padding (the sender need not pad to 16, section 5.4.6).
        var buffer = wire.A.Pool.Rent();
        inner.CopyTo(buffer.Writable);
        keypair.Seal(buffer.Memory, buffer.Offset, inner.Length, inner.Length + pad, keypair.SendCounter++);
        byte[] datagram = buffer.Memory.Slice(buffer.Offset - MessageHeader.TransportHeaderSize,
            MessageHeader.TransportHeaderSize + inner.Length + pad + MessageHeader.AeadTagSize).ToArray();
        buffer.Return();

        var ecn = (Ecn)(outerEcn & 3);
        var outcome = Deliver(wire, wire.B, datagram, ecn, underLoad: false);
        byte[] plaintext = [.. inner, .. new byte[pad]];
        var expected = Expect(plaintext, out int length);
        if (outcome.Open != expected)
        {
            return false;
        }
        if (expected == OpenResult.Packet)
        {
            byte[] delivered = outcome.Delivered!;
            if (!delivered.AsSpan().SequenceEqual(plaintext.AsSpan(0, length)) || HeaderLength(delivered) != delivered.Length)
            {
                return false;
            }
            if (!CopyOutKeepsTheHeaderValid(delivered, ecn))
            {
                return false;
            }
        }
        return StillWorks(wire, wire.B) && NoLeaks(wire);
    }

    [Property(MaxTest = 300)]
    public bool Padding_up_to_the_mtu_never_changes_the_packet_delivered(ushort mtuRaw, ushort lengthRaw, bool ipv6, byte tag)
    {
        var wire = Session(tag);
        int mtu = mtuRaw % 4 == 0 ? 0 : 40 + mtuRaw % 1461;
        wire.A.Device.Mtu = mtu;
        int length = (ipv6 ? 40 : 20) + lengthRaw % 1400;
        byte[] packet = ipv6 ? TestPackets.Ipv6(AllowedSourceA6, new byte[16], length, tag) : wire.PacketFrom(wire.A, length, tag: tag);
        int received = wire.B.Received.Count;
        if (wire.SendPacket(wire.A, packet) != SealResult.Sealed || wire.B.Received.Count != received + 1
            || !wire.B.Received[^1].Packet.AsSpan().SequenceEqual(packet))
        {
            return false;
        }
        // Section 5.4.6: padded to 16 bytes, but (as the kernel and wireguard-go do) not beyond the MTU.
        int padded = wire.Sent(wire.A, MessageType.TransportData)[^1].Bytes.Length - MessageHeader.TransportMinSize;
        bool padding = padded >= length && padded - length < 16
            && (mtu == 0 ? padded % 16 == 0 : padded % 16 == 0 || padded == mtu || length > mtu);
        return padding && NoLeaks(wire);
    }

    // ---- the other way: a packet from the TUN at any offset and length ------------------------

    [Property(MaxTest = 300)]
    public bool Outbound_packets_at_any_offset_and_length_are_sealed_in_bounds_or_refused(ushort offsetRaw, ushort lengthRaw, ushort mtuRaw, byte tag)
    {
        var wire = Session(tag);
        int mtu = mtuRaw % 3 == 0 ? 0 : 1 + mtuRaw % 2000;
        wire.A.Device.Mtu = mtu;
        var buffer = wire.A.Pool.Rent();
        int capacity = buffer.Capacity;
        int offset = offsetRaw % (capacity + 1);
        int length = lengthRaw % (capacity - offset + 1);
        byte[] packet = length >= 20 ? wire.PacketFrom(wire.A, length, tag: tag) : Fill([tag], length);
        packet.CopyTo(buffer.Memory[offset..]);
        buffer.SetData(offset, length);
        var result = wire.A.Peer.HandleTunPacket(buffer, wire.Now);
        int received = wire.B.Received.Count;
        if (result == SealResult.Sealed)
        {
            if (buffer.Offset < 0 || buffer.Offset + buffer.Length > capacity || buffer.Length < length + MessageHeader.TransportMinSize)
            {
                return false;
            }
            wire.Send(wire.A, buffer);
            wire.Pump();
            bool delivered = wire.B.Received.Count == received + 1 && wire.B.Received[^1].Packet.AsSpan().SequenceEqual(packet);
            if (delivered != length >= 20)
            {
                return false; // a valid packet lost, or a fragment of one delivered
            }
        }
        else
        {
            buffer.Return();
            // Refused only for want of data, of headroom for the header, or of tailroom for padding and tag.
            if (result != SealResult.Dropped || (length > 0 && offset >= MessageHeader.TransportHeaderSize && offset + length + 15 + MessageHeader.AeadTagSize <= capacity))
            {
                return false;
            }
        }
        return StillWorks(wire, wire.B) && NoLeaks(wire);
    }

    // ---- a whole schedule: traffic, loss, replays, forgeries and time ------------------------

    /// <summary>
    /// A random schedule of steps on a live pair: each side sends, time jumps (through rekeys,
    /// Reject-After-Time and key zeroing), datagrams are lost, old datagrams of any type are replayed
    /// or replayed with a byte changed, garbage arrives, either side forces a handshake. Whatever
    /// happens, each side receives only packets the other side sent, none twice, and every buffer
    /// comes back to its pool.
    /// </summary>
    [Property(MaxTest = 150, EndSize = 300)]
    public bool A_schedule_of_traffic_loss_replays_and_time_never_duplicates_forges_or_leaks(byte[] script, byte seed)
    {
        script ??= [];
        var wire = Session(seed);
        var sentBy = new Dictionary<string, Node>();
        int tag = 1;
        int lose = 0;
        wire.OnWire = (_, _) =>
        {
            if (lose > 0)
            {
                lose--;
                return false;
            }
            return true;
        };
        for (int i = 0; i + 1 < script.Length && i < 300; i += 2)
        {
            byte op = script[i];
            byte arg = script[i + 1];
            Node node = (op & 0x80) != 0 ? wire.A : wire.B;
            switch (op % 8)
            {
                case 0:
                case 1:
                {
                    byte[] packet = wire.PacketFrom(node, 40 + arg, tag: tag++);
                    sentBy[Convert.ToHexString(packet)] = node;
                    wire.SendPacket(node, packet);
                    break;
                }
                case 2: // time passes: up to 4 minutes, past Rekey-After-Time and Reject-After-Time
                    wire.Advance(TimeSpan.FromMilliseconds(arg * 937));
                    break;
                case 3: // an old datagram of any type, again
                case 4: // an old datagram with one byte changed
                {
                    if (wire.Wire.Count == 0)
                    {
                        break;
                    }
                    var (from, bytes, ecn, _, _) = wire.Wire[arg * 7 % wire.Wire.Count];
                    byte[] copy = (byte[])bytes.Clone();
                    if (op % 8 == 4 && copy.Length > 0)
                    {
                        copy[arg % copy.Length] ^= (byte)(op | 1);
                    }
                    wire.Inject(wire.Other(from), copy, from.Endpoint, ecn);
                    wire.Pump();
                    break;
                }
                case 5: // the next datagrams are lost
                    lose = arg % 4;
                    break;
                case 6: // garbage
                    wire.Inject(node, Fill(script, arg % 200), Stranger);
                    wire.Pump();
                    break;
                default:
                    node.Peer.Connect(wire.Now);
                    wire.Pump();
                    break;
            }
        }
        // Every packet received is one the other side sent, and none came twice.
        foreach (var node in new[] { wire.A, wire.B })
        {
            var seen = new HashSet<string>();
            foreach (var (packet, _) in node.Received)
            {
                string key = Convert.ToHexString(packet);
                if (!seen.Add(key) || !sentBy.TryGetValue(key, out var sender) || !ReferenceEquals(sender, wire.Other(node)))
                {
                    return false;
                }
            }
        }
        return NoLeaks(wire);
    }

    /// <summary>
    /// kind 0: random bytes (empty is a keepalive); 1: IPv4 with any IHL and total length; 2: IPv6 with
    /// any payload length; 3: a well-formed IPv4 packet with trailing bytes. The source is the peer's
    /// own address or one outside its allowed IPs.
    /// </summary>
    private static byte[] HostileInner(byte kind, byte[] body, byte firstByte, ushort lengthField, byte lengthChoice, bool allowedSource)
    {
        switch (kind % 4)
        {
            case 0:
                return Fill(body, body.Length);
            case 1:
            case 3:
            {
                int actual = kind % 4 == 3 ? 20 + lengthChoice % 100 : lengthChoice % 120;
                byte[] p = Fill(body, actual);
                if (actual == 0)
                {
                    return p;
                }
                p[0] = kind % 4 == 3 ? (byte)0x45 : (byte)(0x40 | (firstByte & 0x0F));
                if (actual >= 4)
                {
                    int claimed = kind % 4 == 3 ? actual - lengthField % Math.Max(1, actual - 19) : LengthClaim(lengthField, actual);
                    BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)claimed);
                }
                if (actual >= 16)
                {
                    (allowedSource ? AllowedSourceA4 : [10, 10, (byte)(1 + firstByte % 200), 1]).CopyTo(p, 12);
                }
                return p;
            }
            default:
            {
                int actual = lengthChoice % 140;
                byte[] p = Fill(body, actual);
                if (actual == 0)
                {
                    return p;
                }
                p[0] = (byte)(0x60 | (firstByte & 0x0F));
                if (actual >= 6)
                {
                    BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)Math.Max(0, LengthClaim(lengthField, actual) - 40));
                }
                if (actual >= 24)
                {
                    byte[] source = (byte[])AllowedSourceA6.Clone();
                    if (!allowedSource && (firstByte & 0x10) != 0)
                    {
                        // ::ffff:10.10.0.1, the allowed IPv4 address mapped: still not an allowed IPv6 source.
                        source = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, .. AllowedSourceA4];
                    }
                    else if (!allowedSource)
                    {
                        source[15] = (byte)(2 + firstByte % 200);
                    }
                    source.CopyTo(p, 8);
                }
                return p;
            }
        }
    }

    /// <summary>A length field near the truth (equal, a little less, a little more) or anything.</summary>
    private static int LengthClaim(ushort raw, int actual) => (raw & 3) switch
    {
        0 => actual,
        1 => Math.Max(0, actual - (raw >> 2) % 24),
        2 => actual + (raw >> 2) % 40,
        _ => raw,
    };

    /// <summary>
    /// The independent oracle: what an authenticated <paramref name="plaintext"/> must give. RFC 791:
    /// IHL at least 5, the whole header present, total length from the header to the bytes there;
    /// RFC 8200: 40 + payload length within the bytes; the rest is padding. The source must be the
    /// peer's allowed address (10.10.0.1/32 or fd00::1/128).
    /// </summary>
    private static OpenResult Expect(byte[] plaintext, out int length)
    {
        length = 0;
        if (plaintext.Length == 0)
        {
            return OpenResult.Keepalive;
        }
        switch (plaintext[0] >> 4)
        {
            case 4 when plaintext.Length >= 20:
            {
                int headerLength = (plaintext[0] & 0x0F) * 4;
                int total = BinaryPrimitives.ReadUInt16BigEndian(plaintext.AsSpan(2));
                if (headerLength < 20 || headerLength > plaintext.Length || total < headerLength || total > plaintext.Length)
                {
                    return OpenResult.Malformed;
                }
                length = total;
                return plaintext.AsSpan(12, 4).SequenceEqual(AllowedSourceA4) ? OpenResult.Packet : OpenResult.SourceNotAllowed;
            }
            case 6 when plaintext.Length >= 40:
            {
                int total = 40 + BinaryPrimitives.ReadUInt16BigEndian(plaintext.AsSpan(4));
                if (total > plaintext.Length)
                {
                    return OpenResult.Malformed;
                }
                length = total;
                return plaintext.AsSpan(8, 16).SequenceEqual(AllowedSourceA6) ? OpenResult.Packet : OpenResult.SourceNotAllowed;
            }
            default:
                return OpenResult.Malformed;
        }
    }

    /// <summary>The length the IP header of a delivered packet claims.</summary>
    private static int HeaderLength(byte[] packet) => packet[0] >> 4 == 4
        ? BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(2))
        : 40 + BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(4));

    /// <summary>
    /// Copy-out (RFC 6040 section 4.2) on what was delivered: nothing throws, only the ECN bits (and
    /// the IPv4 checksum) change, and a valid IPv4 header checksum stays valid (RFC 1624).
    /// </summary>
    private static bool CopyOutKeepsTheHeaderValid(byte[] delivered, Ecn outer)
    {
        byte[] before = (byte[])delivered.Clone();
        bool ipv4 = delivered[0] >> 4 == 4;
        int headerLength = ipv4 ? (delivered[0] & 0x0F) * 4 : 40;
        bool checksumValidBefore = ipv4 && Ipv4Checksum.Compute(before.AsSpan(0, headerLength)) == 0;
        var result = IpPacket.ApplyDecapsulation(delivered, outer, out var status);
        if (status != IpParseStatus.Ok)
        {
            return false;
        }
        if (result.Verdict == EcnVerdict.Drop)
        {
            return delivered.AsSpan().SequenceEqual(before);
        }
        for (int i = 0; i < delivered.Length; i++)
        {
            bool checksumByte = ipv4 && i is 10 or 11;
            if (i != 1 && !checksumByte && delivered[i] != before[i])
            {
                return false;
            }
        }
        IpPacket.TryGetEcn(delivered, out var now);
        return now == result.Inner && (!checksumValidBefore || Ipv4Checksum.Compute(delivered.AsSpan(0, headerLength)) == 0);
    }

    // ---- the socket reader's dispatch, with the accounting checked ---------------------------

    /// <summary>
    /// Hands <paramref name="bytes"/> to <paramref name="node"/> the way the socket reader does
    /// (classify; transport data by receiver index to its peer; handshake messages admitted at the
    /// device, then to the peer by initiator key or receiver index) and checks that every refusal is
    /// counted exactly once, at the device or at the peer. The datagram's buffer is returned here,
    /// whatever happens; anything the peer queued in reply is returned too.
    /// </summary>
    private static Outcome Deliver(WireHarness wire, Node node, byte[] bytes, Ecn ecn, bool underLoad)
    {
        var peer = node.Peer;
        var counters = peer.Counters;
        var device = node.Device.Counters;
        long rejections = Rejections(counters);
        long keepalives = counters.KeepalivesReceived;
        long deviceRejections = device.Malformed + device.Mac1Failures;
        var buffer = node.Pool.Rent();
        bytes.CopyTo(buffer.Writable);
        buffer.Length = bytes.Length;
        buffer.Endpoint = Stranger;
        buffer.Ecn = ecn;
        Outcome outcome;
        try
        {
            var type = MessageHeader.Classify(buffer.Data, out uint receiver);
            if (type == MessageType.TransportData)
            {
                if (!node.Device.Indices.TryLookup(receiver, out var owner) || owner != peer.PublicKey)
                {
                    outcome = new Outcome(type, null, null, null, null); // no peer: the reader drops and counts it
                }
                else
                {
                    var open = peer.HandleTransportData(buffer, wire.Now);
                    Assert.Equal(rejections + (open is OpenResult.Packet or OpenResult.Keepalive ? 0 : 1), Rejections(counters));
                    Assert.Equal(keepalives + (open == OpenResult.Keepalive ? 1 : 0), counters.KeepalivesReceived);
                    outcome = new Outcome(type, null, null, open, open == OpenResult.Packet ? buffer.Data.ToArray() : null);
                }
            }
            else
            {
                var admission = node.Device.AdmitHandshake(buffer, underLoad, wire.Now, out var cookie);
                if (cookie is not null)
                {
                    Assert.Equal(HandshakeAdmission.SendCookie, admission);
                    Assert.Equal(MessageType.CookieReply, MessageHeader.Classify(cookie.Data, out _));
                    Assert.Equal(Stranger, cookie.Endpoint);
                    cookie.Return();
                }
                Assert.Equal(deviceRejections + (admission == HandshakeAdmission.Reject ? 1 : 0), device.Malformed + device.Mac1Failures);
                Assert.True(type != MessageType.Invalid || admission == HandshakeAdmission.Reject);
                HandshakeResult? handshake = null;
                bool routed = admission == HandshakeAdmission.Accept && (type == MessageType.Initiation
                    ? node.Device.TryIdentifyInitiator(buffer, out var initiator) && initiator == peer.PublicKey
                    : node.Device.Indices.TryLookup(receiver, out var owner) && owner == peer.PublicKey);
                if (routed)
                {
                    handshake = peer.HandleHandshakeMessage(buffer, wire.Now);
                    Assert.Equal(rejections + (handshake == HandshakeResult.Accepted ? 0 : 1), Rejections(counters));
                }
                else
                {
                    Assert.Equal(rejections, Rejections(counters));
                }
                outcome = new Outcome(type, admission, handshake, null, null);
            }
        }
        finally
        {
            buffer.Return();
        }
        while (peer.PollTransmit(out var reply))
        {
            reply.Return();
        }
        return outcome;
    }

    /// <summary>The session carries a packet from the other side to <paramref name="node"/> afterwards.</summary>
    private static bool StillWorks(WireHarness wire, Node node)
    {
        var from = wire.Other(node);
        int before = node.Received.Count;
        byte[] packet = wire.PacketFrom(from, 80, tag: 77);
        if (wire.SendPacket(from, packet) == SealResult.Dropped)
        {
            return false;
        }
        wire.Pump();
        return node.Received.Count == before + 1 && node.Received[^1].Packet.AsSpan().SequenceEqual(packet);
    }

    private static bool NoLeaks(WireHarness wire)
    {
        wire.Dispose();
        return wire.A.Pool.Outstanding == 0 && wire.B.Pool.Outstanding == 0;
    }

    private static WireHarness Session(int seed)
    {
        var wire = new WireHarness(seed: 1000 + seed);
        wire.Handshake();
        return wire;
    }

    /// <summary>Seals <paramref name="packet"/> on A with the live keys without delivering it; returns the datagram.</summary>
    private static byte[] SealOnA(WireHarness wire, byte[] packet)
    {
        var buffer = TestPackets.Rent(wire.A.Pool, packet);
        Assert.Equal(SealResult.Sealed, wire.A.Peer.HandleTunPacket(buffer, wire.Now));
        byte[] datagram = buffer.Data.ToArray();
        buffer.Return();
        return datagram;
    }

    private static long Rejections(PeerCounters c) =>
        c.HandshakeRejections + c.ReplayedTimestamps + c.HandshakeFloods + c.UnexpectedMessages + c.AuthenticationFailures
        + c.ReplayRejections + c.NoKeypairRejections + c.MalformedRejections + c.SourceNotAllowedRejections;

    /// <summary><paramref name="size"/> bytes: <paramref name="body"/> repeated, or a fixed pattern when it is empty.</summary>
    private static byte[] Fill(byte[] body, int size)
    {
        var bytes = new byte[size];
        for (int i = 0; i < size; i++)
        {
            bytes[i] = body.Length == 0 ? (byte)(i * 13 + 7) : (byte)(body[i % body.Length] + i / body.Length);
        }
        return bytes;
    }

    /// <summary>mac1 = MAC(HASH("mac1----" || Spub_receiver), message up to mac1), section 5.4.4, with the reference code.</summary>
    private static void WriteMac1(byte[] message, WireGuardKey receiver)
    {
        int mac1Offset = message.Length - 2 * MessageLayout.MacSize;
        byte[] key = ReferenceWireGuard.Hash(Encoding.ASCII.GetBytes("mac1----"), KeyBytes(receiver));
        ReferenceWireGuard.Mac(key, message[..mac1Offset]).CopyTo(message, mac1Offset);
    }

    private static byte[] KeyBytes(WireGuardKey key)
    {
        var bytes = new byte[WireGuardKey.Size];
        key.CopyTo(bytes);
        return bytes;
    }
}
