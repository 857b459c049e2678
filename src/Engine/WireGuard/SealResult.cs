namespace Firezone.Actors.Engine.WireGuard;

/// <summary>What <see cref="Peer.HandleTunPacket"/> did with an outbound packet.</summary>
public enum SealResult : byte
{
    /// <summary>The buffer now holds the transport datagram (header written into the headroom, padded, tag appended) addressed to the peer's endpoint. The caller still owns it and sends it.</summary>
    Sealed = 0,

    /// <summary>No usable session yet: the peer keeps the buffer (ownership moved to the engine) and sends it sealed through <see cref="Peer.PollTransmit"/> once a handshake completes. A handshake initiation is queued if none is in flight; a peer with no endpoint yet (a Gateway's Client) holds it until the other side's handshake is confirmed.</summary>
    Queued = 1,

    /// <summary>The packet was refused (too large, empty, or neither its queue nor the device's budget has room: <see cref="StagedPacketBudget"/>). The caller still owns the buffer and returns it.</summary>
    Dropped = 2,
}
