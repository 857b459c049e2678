using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// One peer's protocol state machine, sans-IO (in the style of Firezone's snownet): handshake
/// (Noise IKpsk2), current/previous/next keypairs, replay window, timers. Single-threaded: exactly
/// one owner (a PeerConnection actor) calls it. Inputs: <see cref="HandleTunPacket"/>,
/// <see cref="HandleTransportData"/>, <see cref="HandleHandshakeMessage"/>, <see cref="HandleTimeout"/>.
/// Outputs: <see cref="PollTransmit"/>, <see cref="PollTimeout"/>. Time is the monotonic
/// <c>now</c> passed in; nothing here reads a clock.
/// </summary>
public sealed class Peer : IDisposable
{
    public Peer(Device device, PeerConfig config)
    {
        throw new NotImplementedException("issue 3");
    }

    public WireGuardKey PublicKey => throw new NotImplementedException("issue 3");

    public PeerConfig Config => throw new NotImplementedException("issue 3");

    /// <summary>Current endpoint: configured, then the source of the latest authenticated datagram (roaming, section 6.5).</summary>
    public UdpEndpoint Endpoint => throw new NotImplementedException("issue 3");

    /// <summary>Wall-clock time of the latest completed handshake, or null.</summary>
    public DateTime? LastHandshakeUtc => throw new NotImplementedException("issue 3");

    /// <summary>Bytes received and sent in datagrams (what `wg show` calls transfer).</summary>
    public long RxBytes => throw new NotImplementedException("issue 3");

    public long TxBytes => throw new NotImplementedException("issue 3");

    /// <summary>Applies a configuration change (endpoint, keepalive, preshared key, allowed IPs) without losing the session.</summary>
    public void Update(PeerConfig config, TimeSpan now) => throw new NotImplementedException("issue 3");

    /// <summary>
    /// Outbound: seals the IP packet in <paramref name="packet"/> in place (header into the headroom,
    /// padding, tag). <see cref="PacketBuffer.Ecn"/> is left as the caller set it (the outer codepoint
    /// from copy-in) and <see cref="PacketBuffer.Endpoint"/> is set to the peer's endpoint.
    /// </summary>
    public SealResult HandleTunPacket(PacketBuffer packet, TimeSpan now) => throw new NotImplementedException("issue 3");

    /// <summary>Inbound transport data addressed to one of this peer's receiver indices. The caller keeps ownership of the buffer in every case.</summary>
    public OpenResult HandleTransportData(PacketBuffer datagram, TimeSpan now) => throw new NotImplementedException("issue 3");

    /// <summary>An initiation (already admitted by <see cref="Device.AdmitHandshake"/>), response or cookie reply for this peer. The caller keeps ownership of the buffer.</summary>
    public HandshakeResult HandleHandshakeMessage(PacketBuffer datagram, TimeSpan now) => throw new NotImplementedException("issue 3");

    /// <summary>Starts a handshake now unless one is in flight (used at start-up and when a user forces one).</summary>
    public void Connect(TimeSpan now) => throw new NotImplementedException("issue 3");

    /// <summary>Runs every timer due at <paramref name="now"/> (whitepaper section 6).</summary>
    public void HandleTimeout(TimeSpan now) => throw new NotImplementedException("issue 3");

    /// <summary>The next time <see cref="HandleTimeout"/> must be called, or null when no timer is armed.</summary>
    public TimeSpan? PollTimeout() => throw new NotImplementedException("issue 3");

    /// <summary>
    /// Next datagram to send (handshake message, keepalive, or a queued packet now sealed), with
    /// <see cref="PacketBuffer.Endpoint"/> and <see cref="PacketBuffer.Ecn"/> set; ownership moves to the caller.
    /// </summary>
    public bool PollTransmit(out PacketBuffer datagram) => throw new NotImplementedException("issue 3");

    /// <summary>Frees this peer's receiver indices, returns queued buffers and zeroes key material.</summary>
    public void Dispose() => throw new NotImplementedException("issue 3");
}
