using System.Security.Cryptography;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>Where a peer's Noise handshake stands (wireguard-go's handshakeState).</summary>
internal enum HandshakeState : byte
{
    Zeroed = 0,
    InitiationCreated,
    InitiationConsumed,
    ResponseCreated,
    ResponseConsumed,
}

/// <summary>
/// One peer's in-progress Noise_IKpsk2 handshake (whitepaper section 5.4): the chaining key and
/// hash, the ephemeral keys, the indices, and the replay/flood guards for initiations. Owned by the
/// <see cref="Peer"/>; zeroed as soon as a keypair is derived from it.
/// </summary>
internal sealed class Handshake
{
    public HandshakeState State;

    // The secrets of one exchange, allocated when a handshake starts and dropped (after zeroing) by
    // Clear: an idle peer, the common case on a Gateway with thousands of configured Clients, holds
    // none of the 128 bytes (issue 8: at most 5 KB per idle peer).
    private Secrets? _secrets;

    public Span<byte> Hash => Exchange.Hash;
    public Span<byte> ChainKey => Exchange.ChainKey;
    public Span<byte> LocalEphemeral => Exchange.LocalEphemeral;
    public Span<byte> RemoteEphemeral => Exchange.RemoteEphemeral;

    private Tai64NStamp _lastTimestamp;

    /// <summary>The greatest TAI64N accepted from this peer (section 5.1: replayed initiations are dropped).</summary>
    public Span<byte> LastTimestamp => _lastTimestamp;

    /// <summary>Our sender index for the message in flight (registered in the device's index table).</summary>
    public uint LocalIndex;
    public bool HasLocalIndex;

    /// <summary>The peer's sender index: where our responses and transport data go.</summary>
    public uint RemoteIndex;

    public TimeSpan? LastInitiationConsumption;
    public TimeSpan? LastSentHandshake;

    private Secrets Exchange => _secrets ??= new Secrets();

    /// <summary>Zeroes the secrets of the exchange (not the replay guards, which must outlive it).</summary>
    public void Clear()
    {
        if (_secrets is { } secrets)
        {
            CryptographicOperations.ZeroMemory(secrets.Hash);
            CryptographicOperations.ZeroMemory(secrets.ChainKey);
            CryptographicOperations.ZeroMemory(secrets.LocalEphemeral);
            CryptographicOperations.ZeroMemory(secrets.RemoteEphemeral);
            _secrets = null;
        }
        State = HandshakeState.Zeroed;
    }

    private sealed class Secrets
    {
        public Bytes32 Hash;
        public Bytes32 ChainKey;
        public Bytes32 LocalEphemeral;
        public Bytes32 RemoteEphemeral;
    }
}
