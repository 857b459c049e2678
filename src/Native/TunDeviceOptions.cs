namespace Firezone.Actors.Native;

/// <summary>
/// How to create (or attach to) a TUN device.
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

    /// <summary>
    /// Open with IFF_VNET_HDR and ask for checksum, TSO and (Linux 6.2+) USO offloads: the kernel then
    /// hands over TCP/UDP super-packets of up to 64 KiB, which the device splits into MTU-sized packets,
    /// and runs of one TCP (or UDP, see <see cref="UdpCoalescing"/>) flow written in a batch are merged
    /// into one super-packet (one write). What the
    /// kernel accepted is <see cref="LinuxTunDevice.Offloads"/>; a kernel that refuses runs without.
    /// </summary>
    public bool Offloads { get; init; } = true;

    /// <summary>
    /// With <see cref="Offloads"/> and a kernel that took USO: merge runs of one UDP flow written in
    /// a batch into one super-packet too. Off for a host whose packets go on into a tunnel endpoint
    /// that mishandles UDP GSO (wireguard-go has the same switch); the daemon's
    /// <c>--no-udp-coalescing</c>.
    /// </summary>
    public bool UdpCoalescing { get; init; } = true;
}
