namespace Firezone.Actors.Host.Config;

/// <summary>What the host does besides tunnelling (the <c>#! Role</c> directive).</summary>
public enum HostRole
{
    /// <summary>Only reaches resources through the tunnel (a Firezone Client).</summary>
    Client = 0,

    /// <summary>
    /// Forwards tunnel traffic to resources on its other interfaces and masquerades it (a Firezone
    /// Gateway): IP forwarding on, an nftables masquerade table for the interface.
    /// </summary>
    Gateway = 1,
}
