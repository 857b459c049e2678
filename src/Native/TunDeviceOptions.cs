namespace Firezone.Actors.Native;

/// <summary>
/// How to create (or attach to) a TUN device.
///
/// Room for offloads (performance issue, not implemented): <c>IFF_VNET_HDR</c> with
/// <c>TUNSETOFFLOAD</c>/<c>TUNSETVNETHDRSZ</c> would be one more flag here. Each read then starts with
/// a 10/12-byte virtio_net_hdr, which fits in <see cref="Firezone.Actors.Engine.Buffers.PacketBuffer.Headroom"/>
/// (the read would land at Headroom - header size), and a GSO read delivers one large TCP/UDP
/// super-packet that the engine splits; writes gain a header the same way. The batch-shaped
/// <see cref="ITunDevice"/> calls stay as they are.
/// </summary>
public sealed record TunDeviceOptions
{
    /// <summary>
    /// Interface name, at most 15 bytes. Null or empty lets the kernel choose (tunN). A name with
    /// "%d" is a kernel template. If a persistent TUN device of this name exists and has no reader,
    /// it is attached to instead of created (the semantics of wireguard-go and <c>ip tuntap</c>).
    /// </summary>
    public string? Name { get; init; }

    /// <summary>MTU to set, or null to keep the kernel's (1500). Must not exceed the packet buffers' MaxPacketLength.</summary>
    public int? Mtu { get; init; }

    /// <summary>Bring the link up (IFF_UP) after creating it.</summary>
    public bool BringUp { get; init; } = true;
}
