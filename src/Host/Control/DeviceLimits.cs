namespace Firezone.Actors.Host.Control;

/// <summary>Bounds on what one interface may be configured with, whichever way the configuration comes (UAPI, config file).</summary>
public static class DeviceLimits
{
    /// <summary>
    /// Peers an interface may have at most, as wireguard-go's device.MaxPeers (1 &lt;&lt; 16): `wg set`,
    /// `wg addconf` or a config file past it is refused, so peers cannot be added until the daemon
    /// runs out of memory.
    /// </summary>
    public const int MaxPeers = 1 << 16;
}
