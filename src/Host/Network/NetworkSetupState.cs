namespace Firezone.Actors.Host.Network;

/// <summary>
/// What <see cref="InterfaceNetworkSetup"/> changed outside the TUN device, persisted so that an
/// instance started after an unclean exit (SIGKILL, the OOM killer) can remove what the dead one
/// left and restore the sysctl switches to the values they had before either of them ran.
/// </summary>
public sealed class NetworkSetupState
{
    /// <summary>
    /// The network namespace the switches belong to (<c>readlink /proc/self/ns/net</c>: "net:[INODE]"),
    /// so that another instance adopts an original only in the same namespace; null from older files.
    /// </summary>
    public string? Namespace { get; set; }

    /// <summary>The original value of each sysctl switch that was changed, to restore on teardown.</summary>
    public Dictionary<string, string> Sysctl { get; set; } = [];

    /// <summary>ip(8) arguments that undo what was added (routes in a table, policy rules), oldest first.</summary>
    public List<string[]> Undo { get; set; } = [];

    /// <summary>True once the gateway's nftables table may exist.</summary>
    public bool NftablesTable { get; set; }

    /// <summary>The families ("ip", "ip6") whose full-tunnel mark table may exist (see InterfaceNetworkSetup.MarkTables).</summary>
    public List<string> MarkTables { get; set; } = [];

    /// <summary>The record name given to resolvconf for the file's DNS (<c>resolvconf -a NAME</c>), once it may exist.</summary>
    public string? Resolvconf { get; set; }
}
