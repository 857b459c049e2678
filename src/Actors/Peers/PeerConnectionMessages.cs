using System.Runtime.ExceptionServices;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Peers;

/// <summary>
/// New configuration for a running peer (endpoint, keepalive, preshared key, allowed IPs) without
/// losing the session. <paramref name="EndpointNamed"/>: the request named the endpoint, so the
/// peer goes there even when roaming had moved it from that same configured endpoint (see <see cref="Peer.Update"/>).
/// <paramref name="EndpointMove"/>: when the update moves the peer to its configured endpoint, the
/// number <see cref="PeerSlot.TellEndpointMove"/> gave it (0 otherwise); the connection marks it applied.
/// </summary>
public sealed record UpdatePeerConfig(PeerConfig Config, bool EndpointNamed = false, long EndpointMove = 0);

/// <summary>Ask a PeerConnection (or the supervisor/tunnel, with a key) for its <see cref="PeerStatus"/>; unknown keys get <see cref="PeerNotFound"/>.</summary>
public sealed record GetPeerStatus(WireGuardKey PublicKey);

public sealed record PeerNotFound(WireGuardKey PublicKey);

/// <summary>Start a handshake now unless one is in flight.</summary>
public sealed record ConnectPeer(WireGuardKey PublicKey);

/// <summary>
/// To the TunnelActor or PeerSupervisor: every peer with a session sends a keepalive on it, so that
/// peers learn a new listen port at once (wireguard-go's SendKeepalivesToPeersWithCurrentKeypair
/// after a rebind). Peers without a session do nothing. Not answered.
/// </summary>
public sealed class SendKeepalivesOnSessions
{
    public static readonly SendKeepalivesOnSessions Instance = new();
    private SendKeepalivesOnSessions() { }
}

/// <summary>The PeerConnection's single keyed timer (the engine's PollTimeout).</summary>
internal sealed class PeerTimer
{
    public static readonly PeerTimer Instance = new();
    private PeerTimer() { }
}

/// <summary>A reader thread stepped the path and moved the engine's deadline earlier: re-arm the timer.</summary>
internal sealed class RearmPeerTimer
{
    public static readonly RearmPeerTimer Instance = new();
    private RearmPeerTimer() { }
}

/// <summary>
/// The engine threw while a reader thread stepped <paramref name="Path"/> (now closed): rethrown, so
/// supervision restarts the peer. Ignored by an instance whose path is another one: that fault's
/// path was replaced by a restart already, and counting it again would bring the peer nearer to
/// its failure limit for one fault.
/// </summary>
internal sealed record PeerPathFaulted(PeerDataPath Path, ExceptionDispatchInfo Error);
