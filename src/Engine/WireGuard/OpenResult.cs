namespace Firezone.Actors.Engine.WireGuard;

/// <summary>What <see cref="Peer.HandleTransportData"/> found in an inbound transport datagram.</summary>
public enum OpenResult : byte
{
    /// <summary>Authenticated; the buffer's data window now holds exactly the inner IP packet (padding trimmed to the IP total length). <see cref="Buffers.PacketBuffer.Ecn"/> still holds the outer codepoint for copy-out.</summary>
    Packet = 0,

    /// <summary>An authenticated keepalive (empty payload). The caller returns the buffer.</summary>
    Keepalive,

    /// <summary>No keypair has the receiver index, or it expired (Reject-After-Time/Messages).</summary>
    NoKeypair,

    /// <summary>The counter was already seen or is too old for the replay window.</summary>
    Replayed,

    /// <summary>The AEAD tag did not verify (tampered, wrong key).</summary>
    AuthenticationFailed,

    /// <summary>The decrypted payload is not a valid IP packet, or the datagram is not a transport message at all (wrong type, reserved bytes or size).</summary>
    Malformed,

    /// <summary>The inner source address is not in this peer's allowed IPs (whitepaper section 2, cryptokey routing).</summary>
    SourceNotAllowed,
}
