namespace Firezone.Actors.Native;

/// <summary>Which TUN offloads a <see cref="LinuxTunDevice"/> runs with (what the kernel accepted).</summary>
[Flags]
public enum TunOffloads
{
    None = 0,
    /// <summary>IFF_VNET_HDR: every read and write carries a virtio_net_hdr; writes may be coalesced TCP super-packets.</summary>
    VnetHeader = 1,
    /// <summary>TUN_F_CSUM: reads may carry a partial checksum, completed by the device.</summary>
    Checksum = 2,
    /// <summary>TUN_F_TSO4 | TUN_F_TSO6: reads may be TCP super-packets, split by the device.</summary>
    Tso = 4,
    /// <summary>TUN_F_USO4 | TUN_F_USO6 (Linux 6.2+): reads may be UDP super-packets, split by the device.</summary>
    Uso = 8,
}
