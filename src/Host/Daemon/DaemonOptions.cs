using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Logging;

namespace Firezone.Actors.Host.Daemon;

/// <summary>How one daemon run is set up, from the command line.</summary>
public sealed record DaemonOptions
{
    public required string InterfaceName { get; init; }

    /// <summary>Service mode's configuration file; null in wireguard-go mode (configured over the UAPI).</summary>
    public TunnelConfig? Config { get; init; }

    public required LogOptions Log { get; init; }

    /// <summary>The longest reply poll of the tunnel's reader threads (TunnelSettings.ReplyPollMax); zero: off.</summary>
    public TimeSpan ReplyPollMax { get; init; } = Actors.Tunnel.TunnelSettings.DefaultReplyPollMax;

    /// <summary>The reader threads' pause after a read of a few bulk packets (TunnelSettings.ReadModeration); zero: off.</summary>
    public TimeSpan ReadModeration { get; init; } = Actors.Tunnel.TunnelSettings.DefaultReadModeration;

    /// <summary>Merge runs of one UDP flow written to the TUN device (TunDeviceOptions.UdpCoalescing); off with --no-udp-coalescing.</summary>
    public bool UdpCoalescing { get; init; } = true;

    /// <summary>Let the kernel merge received datagrams of one flow (UdpBatchSocketOptions.UseGro); off with --no-udp-gro.</summary>
    public bool UdpGro { get; init; } = true;

    /// <summary>wireguard-go mode: the ECN mode of every peer a UAPI request creates (--ecn-mode); null: normal. Service mode takes the file's.</summary>
    public Engine.EcnMode? PeerEcnMode { get; init; }

    /// <summary>Where the UAPI socket lives; /var/run/wireguard unless a test says otherwise.</summary>
    public string SocketDirectory { get; init; } = Uapi.UapiSocketPath.DefaultDirectory;

    /// <summary>
    /// How long shutdown may take before the host gives up waiting (the bound is 2 s;
    /// the hosted services stop well inside it).
    /// </summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(2);
}
