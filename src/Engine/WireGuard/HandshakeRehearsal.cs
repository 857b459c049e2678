using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.Packets;
using Firezone.Actors.Engine.Routing;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// One handshake and one transport packet each way between two throwaway devices in memory, with
/// fresh random keys and the daemon's own crypto: the steps a responder and an initiator take for a
/// real peer (mac1 admission, identifying the initiator, consuming the initiation and the response,
/// sealing and opening), so that their code is compiled or bound, their types loaded and their
/// statics made before the first real handshake arrives. A daemon that did that work on the first
/// real initiation answered it 26 ms after it arrived (build output; 6 ms published), where
/// wireguard-go answers in about 0.5 ms, and two daemons started at the same moment more often
/// crossed initiations. Nothing of it reaches the network, the real device or its pool.
/// </summary>
public static class HandshakeRehearsal
{
    private static readonly IpPrefix AddressA = IpPrefix.Parse("10.255.0.1/32");
    private static readonly IpPrefix AddressB = IpPrefix.Parse("10.255.0.2/32");

    /// <summary>
    /// Runs it; true when the handshake completed and both inner packets arrived as sent, false when a
    /// step refused (the real handshakes meet the same code and report their own failures). What the
    /// crypto throws goes to the caller, which logs it.
    /// </summary>
    public static bool Run(IX25519 x25519, ITransportAead transportAead, IRandomSource random)
    {
        var pool = new PacketBufferPool(preallocate: 0, maxBuffers: 16);
        var wallClockAtZero = DateTime.UtcNow;
        using var deviceA = new Device(RandomKey(random), pool, random, wallClockAtZero, null, x25519, transportAead);
        using var deviceB = new Device(RandomKey(random), pool, random, wallClockAtZero, null, x25519, transportAead);
        deviceA.PeersWriteAllowedIps = true;
        deviceB.PeersWriteAllowedIps = true;
        var endpointA = UdpEndpoint.FromIPv4([127, 0, 0, 1], 1);
        var endpointB = UdpEndpoint.FromIPv4([127, 0, 0, 1], 2);
        using var peerOfA = new Peer(deviceA, new PeerConfig { PublicKey = deviceB.PublicKey, Endpoint = endpointB, AllowedIps = [AddressB] });
        using var peerOfB = new Peer(deviceB, new PeerConfig { PublicKey = deviceA.PublicKey, AllowedIps = [AddressA] });
        var now = TimeSpan.FromSeconds(1);

        // A initiates; B admits the initiation, finds whose it is, answers; A consumes the answer.
        peerOfA.Connect(now);
        if (!Deliver(peerOfA, deviceB, peerOfB, endpointA, now) || !Deliver(peerOfB, deviceA, peerOfA, endpointB, now))
        {
            return false;
        }
        // A confirms the session with a keepalive (it had no packet waiting), then a packet each way.
        if (!Deliver(peerOfA, deviceB, peerOfB, endpointA, now))
        {
            return false;
        }
        return SendPacket(pool, peerOfA, deviceB, peerOfB, AddressA, AddressB, endpointA, now)
            && SendPacket(pool, peerOfB, deviceA, peerOfA, AddressB, AddressA, endpointB, now);
    }

    /// <summary>Moves one datagram <paramref name="from"/> has to send to <paramref name="to"/> as the socket reader and the peer actor would.</summary>
    private static bool Deliver(Peer from, Device to, Peer toPeer, UdpEndpoint source, TimeSpan now)
    {
        if (!from.PollTransmit(out var datagram))
        {
            return false;
        }
        try
        {
            datagram.Endpoint = source;
            var type = MessageHeader.Classify(datagram.Data, out uint receiver);
            switch (type)
            {
                case MessageType.Initiation:
                case MessageType.Response:
                    if (to.AdmitHandshake(datagram, underLoad: false, now, out var cookie) != HandshakeAdmission.Accept)
                    {
                        cookie?.Return();
                        return false;
                    }
                    bool ours = type == MessageType.Initiation
                        ? to.TryIdentifyInitiator(datagram, out var initiator) && initiator == toPeer.PublicKey
                        : to.Indices.TryLookup(receiver, out var owner) && owner == toPeer.PublicKey;
                    return ours && toPeer.HandleHandshakeMessage(datagram, now) == HandshakeResult.Accepted;
                case MessageType.TransportData:
                    return to.Indices.TryLookup(receiver, out var holder) && holder == toPeer.PublicKey
                        && toPeer.HandleTransportData(datagram, now) == OpenResult.Keepalive;
                default:
                    return false;
            }
        }
        finally
        {
            datagram.Return();
        }
    }

    private const int InnerLength = 28;

    /// <summary>Seals one inner packet at <paramref name="from"/> and opens it at <paramref name="toPeer"/>.</summary>
    private static bool SendPacket(PacketBufferPool pool, Peer from, Device to, Peer toPeer, IpPrefix source, IpPrefix destination, UdpEndpoint sourceEndpoint, TimeSpan now)
    {
        var packet = pool.Rent();
        Span<byte> inner = packet.Writable[..InnerLength];
        inner.Clear();
        inner[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(inner[2..], InnerLength);
        inner[8] = 64;
        inner[9] = 17; // UDP, an empty datagram
        source.Address.TryWriteBytes(inner[12..16], out _);
        destination.Address.TryWriteBytes(inner[16..20], out _);
        BinaryPrimitives.WriteUInt16BigEndian(inner[10..], Ipv4Checksum.Compute(inner[..20]));
        BinaryPrimitives.WriteUInt16BigEndian(inner[24..], 8);
        packet.Length = InnerLength;
        switch (from.HandleTunPacket(packet, now))
        {
            case SealResult.Sealed:
                break;
            case SealResult.Queued:
                return false; // staged for a session it should have had: the peer returns it when disposed
            default:
                packet.Return();
                return false;
        }
        try
        {
            packet.Endpoint = sourceEndpoint;
            var type = MessageHeader.Classify(packet.Data, out uint receiver);
            return type == MessageType.TransportData && to.Indices.TryLookup(receiver, out var holder) && holder == toPeer.PublicKey
                && toPeer.HandleTransportData(packet, now) == OpenResult.Packet && packet.Data.Length == InnerLength;
        }
        finally
        {
            packet.Return();
        }
    }

    private static WireGuardKey RandomKey(IRandomSource random)
    {
        Span<byte> bytes = stackalloc byte[32];
        random.Fill(bytes);
        return new WireGuardKey(bytes);
    }
}
