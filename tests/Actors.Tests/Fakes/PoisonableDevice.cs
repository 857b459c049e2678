using System.Collections.Concurrent;
using Firezone.Actors.Actors.EngineSeam;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Tests.Fakes;

/// <summary>
/// The real engine device, except that its peers throw on a packet whose payload starts with
/// <see cref="Marker"/>: a protocol fault on demand, for the supervision tests. Lives in the
/// tests only; production code has no hook for it.
/// </summary>
public sealed class PoisonableDevice(IWireGuardDevice inner) : IWireGuardDevice
{
    public static readonly byte[] Marker = "POISON!!"u8.ToArray();

    private readonly ConcurrentDictionary<WireGuardKey, int> _peersCreated = new();
    private readonly ConcurrentDictionary<WireGuardKey, bool> _rejected = new();

    /// <summary>From now on, creating a peer for <paramref name="key"/> throws, as the engine does for a configuration it refuses.</summary>
    public void RejectConfigurationOf(WireGuardKey key) => _rejected[key] = true;

    /// <summary>How many engine peers were created for <paramref name="key"/> (1 + restarts).</summary>
    public int PeersCreated(WireGuardKey key) => _peersCreated.TryGetValue(key, out int n) ? n : 0;

    public WireGuardKey PublicKey => inner.PublicKey;
    public PacketBufferPool Pool => inner.Pool;
    private volatile byte[]? _throwOnRouteTo;

    /// <summary>From now on, routing a packet to <paramref name="destination"/> throws (a fault inside the reader thread's loop).</summary>
    public void ThrowOnRouteTo(System.Net.IPAddress destination) => _throwOnRouteTo = destination.GetAddressBytes();

    public bool TryRoute(ReadOnlySpan<byte> destination, out WireGuardKey peer)
    {
        if (_throwOnRouteTo is { } bad && destination.SequenceEqual(bad))
        {
            throw new InvalidOperationException("test: routing fault");
        }
        return inner.TryRoute(destination, out peer);
    }
    public void SetAllowedIps(WireGuardKey peer, IReadOnlyList<IpPrefix> prefixes) => inner.SetAllowedIps(peer, prefixes);
    public void RemoveAllowedIps(WireGuardKey peer) => inner.RemoveAllowedIps(peer);

    /// <summary>Disposing an engine peer of this key (a PeerConnection's PostStop) waits until released.</summary>
    public volatile byte[]? HoldDisposeOf;
    public readonly ManualResetEventSlim HoldDisposeEntered = new(false);
    public readonly ManualResetEventSlim HoldDisposeRelease = new(false);
    public IReadOnlyList<IpPrefix> AllowedIpsOf(WireGuardKey peer) => inner.AllowedIpsOf(peer);
    private int _indexLookupsBeforeFault = -1;

    /// <summary>After <paramref name="lookups"/> more receiver-index lookups succeed, each further one throws (a fault in the socket reader's loop).</summary>
    public void ThrowOnIndexLookupsAfter(int lookups) => Volatile.Write(ref _indexLookupsBeforeFault, lookups);

    public bool TryLookupIndex(uint receiverIndex, out WireGuardKey owner)
    {
        if (Volatile.Read(ref _indexLookupsBeforeFault) >= 0 && Interlocked.Decrement(ref _indexLookupsBeforeFault) < 0)
        {
            throw new InvalidOperationException("test: index lookup fault");
        }
        return inner.TryLookupIndex(receiverIndex, out owner);
    }

    public HandshakeAdmission AdmitHandshake(PacketBuffer datagram, bool underLoad, TimeSpan now, out PacketBuffer? cookieReply, bool cookieReplyAllowed = true) =>
        inner.AdmitHandshake(datagram, underLoad, now, out cookieReply, cookieReplyAllowed);

    public bool TryIdentifyInitiator(PacketBuffer datagram, out WireGuardKey initiatorPublicKey) =>
        inner.TryIdentifyInitiator(datagram, out initiatorPublicKey);

    /// <summary>
    /// When set, the thread that opens a transport datagram of the peer with this public key stops
    /// inside the open (signalling <see cref="HoldEntered"/>) until <see cref="HoldRelease"/> is set
    /// (at most 10 s): a stand-in for a reader descheduled in the middle of a read's groups.
    /// </summary>
    public volatile byte[]? HoldOpenOfKey;

    /// <summary>After a hold of an open is released, the open throws (an engine fault on the socket reader thread).</summary>
    public volatile bool ThrowAfterHold;
    public readonly ManualResetEventSlim HoldRelease = new(false);
    public readonly ManualResetEventSlim HoldEntered = new(false);

    /// <summary>Creating an engine peer of this key (a PeerConnection's PreStart, its configuration already read) waits until released.</summary>
    public volatile byte[]? HoldCreateOf;
    public readonly ManualResetEventSlim HoldCreateEntered = new(false);
    public readonly ManualResetEventSlim HoldCreateRelease = new(false);

    /// <summary>A configuration update of an engine peer of this key (on its PeerConnection, under the peer's lock) waits until released.</summary>
    public volatile byte[]? HoldUpdateOf;
    public readonly ManualResetEventSlim HoldUpdateEntered = new(false);
    public readonly ManualResetEventSlim HoldUpdateRelease = new(false);

    public IWireGuardPeer CreatePeer(PeerConfig config)
    {
        if (_rejected.ContainsKey(config.PublicKey))
        {
            throw new ArgumentException("test: configuration refused by the engine", nameof(config));
        }
        if (HoldCreateOf is { } held && config.PublicKey.Equals(new WireGuardKey(held)))
        {
            HoldCreateEntered.Set();
            HoldCreateRelease.Wait(TimeSpan.FromSeconds(10));
        }
        _peersCreated.AddOrUpdate(config.PublicKey, 1, static (_, n) => n + 1);
        return new PoisonablePeer(inner.CreatePeer(config), this);
    }

    private sealed class PoisonablePeer(IWireGuardPeer peer, PoisonableDevice owner) : IWireGuardPeer
    {
        public WireGuardKey PublicKey => peer.PublicKey;
        public UdpEndpoint Endpoint => peer.Endpoint;
        public UdpEndpoint LocalAddress => peer.LocalAddress;
        public DateTime? LastHandshakeUtc => peer.LastHandshakeUtc;
        public long RxBytes => peer.RxBytes;
        public void RestoreEndpoint(UdpEndpoint endpoint, UdpEndpoint localAddress) => peer.RestoreEndpoint(endpoint, localAddress);
        public void Update(PeerConfig config, TimeSpan now, bool endpointNamed)
        {
            if (owner.HoldUpdateOf is { } k && peer.PublicKey.Equals(new WireGuardKey(k)))
            {
                owner.HoldUpdateEntered.Set();
                owner.HoldUpdateRelease.Wait(TimeSpan.FromSeconds(10));
            }
            peer.Update(config, now, endpointNamed);
        }

        public SealResult HandleTunPacket(PacketBuffer packet, TimeSpan now)
        {
            var data = packet.Data;
            if (data.Length >= 20 + Marker.Length && data.Slice(20, Marker.Length).SequenceEqual(Marker))
            {
                throw new InvalidOperationException("poisoned packet (test fault)");
            }
            return peer.HandleTunPacket(packet, now);
        }

        public OpenResult HandleTransportData(PacketBuffer datagram, TimeSpan now)
        {
            if (owner.HoldOpenOfKey is { } k && peer.PublicKey.Equals(new WireGuardKey(k)))
            {
                owner.HoldEntered.Set();
                owner.HoldRelease.Wait(TimeSpan.FromSeconds(10));
                if (owner.ThrowAfterHold)
                {
                    throw new InvalidOperationException("test: engine fault after a hold");
                }
            }
            return peer.HandleTransportData(datagram, now);
        }
        public HandshakeResult HandleHandshakeMessage(PacketBuffer datagram, TimeSpan now) => peer.HandleHandshakeMessage(datagram, now);
        public void Start(TimeSpan now) => peer.Start(now);
        public void AttachReplayState(HandshakeReplayState state) => peer.AttachReplayState(state);
        public void Connect(TimeSpan now) => peer.Connect(now);
        public bool SendKeepaliveOnSession(TimeSpan now) => peer.SendKeepaliveOnSession(now);
        public void HandleTimeout(TimeSpan now) => peer.HandleTimeout(now);
        public TimeSpan? PollTimeout() => peer.PollTimeout();
        public bool PollTransmit(out PacketBuffer datagram) => peer.PollTransmit(out datagram);
        public int StagedCount => peer.StagedCount;
        public IEnumerable<PacketBuffer> StagedPackets => peer.StagedPackets;
        public bool IsStaged(PacketBuffer packet) => peer.IsStaged(packet);
        public long HandshakeGiveUps => peer.HandshakeGiveUps;
        public PeerHandover? HandOver() => peer.HandOver();
        public bool TakeOver(PeerHandover handover, TimeSpan now) => peer.TakeOver(handover, now);
        public void Dispose()
        {
            if (owner.HoldDisposeOf is { } k && peer.PublicKey.Equals(new WireGuardKey(k)))
            {
                owner.HoldDisposeEntered.Set();
                owner.HoldDisposeRelease.Wait(TimeSpan.FromSeconds(10));
            }
            peer.Dispose();
        }
    }
}
