using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.EngineSeam;

/// <summary>
/// What the actors need from the engine <see cref="Device"/> (thread-safe, shared by every actor):
/// cryptokey routing, receiver-index lookup, handshake admission and a factory for peers.
/// Production uses <see cref="EngineDevice"/>; see <see cref="IWireGuardPeer"/> for why a seam.
/// </summary>
public interface IWireGuardDevice
{
    WireGuardKey PublicKey { get; }

    PacketBufferPool Pool { get; }

    /// <summary>Longest-prefix match of a 4- or 16-byte destination address (whitepaper section 2). Allocation-free.</summary>
    bool TryRoute(ReadOnlySpan<byte> destination, out WireGuardKey peer);

    /// <summary>Replaces the prefixes owned by <paramref name="peer"/> (a prefix owned by another peer moves, as in wg(8)).</summary>
    void SetAllowedIps(WireGuardKey peer, IReadOnlyList<IpPrefix> prefixes);

    void RemoveAllowedIps(WireGuardKey peer);

    /// <summary>The prefixes owned by <paramref name="peer"/> (allocates; for status).</summary>
    IReadOnlyList<IpPrefix> AllowedIpsOf(WireGuardKey peer);

    /// <summary>Local receiver index -> owning peer (whitepaper section 5.4.1). Allocation-free.</summary>
    bool TryLookupIndex(uint receiverIndex, out WireGuardKey owner);

    /// <inheritdoc cref="Device.AdmitHandshake"/>
    HandshakeAdmission AdmitHandshake(PacketBuffer datagram, bool underLoad, TimeSpan now, out PacketBuffer? cookieReply, bool cookieReplyAllowed = true);

    /// <inheritdoc cref="Device.TryIdentifyInitiator(PacketBuffer, out WireGuardKey)"/>
    bool TryIdentifyInitiator(PacketBuffer datagram, out WireGuardKey initiatorPublicKey);

    /// <summary>A fresh peer state machine (no session: the next Connect or packet starts a handshake).</summary>
    IWireGuardPeer CreatePeer(PeerConfig config);
}
