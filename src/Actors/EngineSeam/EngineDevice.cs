using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.EngineSeam;

/// <summary>The production <see cref="IWireGuardDevice"/> over the engine <see cref="Engine.WireGuard.Device"/>.</summary>
public sealed class EngineDevice(Device device) : IWireGuardDevice
{
    public Device Device { get; } = device;

    public WireGuardKey PublicKey => Device.PublicKey;

    public PacketBufferPool Pool => Device.Pool;

    public bool TryRoute(ReadOnlySpan<byte> destination, out WireGuardKey peer) => Device.AllowedIps.TryLookup(destination, out peer);

    /// <summary>One atomic edit (<see cref="AllowedIps{T}.ReplaceAll"/>): no lookup sees a kept prefix missing.</summary>
    public void SetAllowedIps(WireGuardKey peer, IReadOnlyList<IpPrefix> prefixes) => Device.AllowedIps.ReplaceAll(peer, prefixes);

    public void RemoveAllowedIps(WireGuardKey peer) => Device.AllowedIps.RemoveAll(peer);

    public IReadOnlyList<IpPrefix> AllowedIpsOf(WireGuardKey peer) => Device.AllowedIps.PrefixesOf(peer);

    public bool TryLookupIndex(uint receiverIndex, out WireGuardKey owner) => Device.Indices.TryLookup(receiverIndex, out owner);

    public HandshakeAdmission AdmitHandshake(PacketBuffer datagram, bool underLoad, TimeSpan now, out PacketBuffer? cookieReply, bool cookieReplyAllowed = true) =>
        Device.AdmitHandshake(datagram, underLoad, now, out cookieReply, cookieReplyAllowed);

    public bool TryIdentifyInitiator(PacketBuffer datagram, out WireGuardKey initiatorPublicKey) =>
        Device.TryIdentifyInitiator(datagram, out initiatorPublicKey);

    public IWireGuardPeer CreatePeer(PeerConfig config) => new EnginePeer(new Peer(Device, config));
}
