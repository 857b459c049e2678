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
    public readonly byte[] Hash = new byte[32];
    public readonly byte[] ChainKey = new byte[32];
    public readonly byte[] LocalEphemeral = new byte[32];
    public readonly byte[] RemoteEphemeral = new byte[32];

    /// <summary>The greatest TAI64N accepted from this peer (section 5.1: replayed initiations are dropped).</summary>
    public readonly byte[] LastTimestamp = new byte[Tai64N.Size];

    /// <summary>Our sender index for the message in flight (registered in the device's index table).</summary>
    public uint LocalIndex;
    public bool HasLocalIndex;

    /// <summary>The peer's sender index: where our responses and transport data go.</summary>
    public uint RemoteIndex;

    public TimeSpan? LastInitiationConsumption;
    public TimeSpan? LastSentHandshake;

    /// <summary>Zeroes the secrets of the exchange (not the replay guards, which must outlive it).</summary>
    public void Clear()
    {
        CryptographicOperations.ZeroMemory(Hash);
        CryptographicOperations.ZeroMemory(ChainKey);
        CryptographicOperations.ZeroMemory(LocalEphemeral);
        CryptographicOperations.ZeroMemory(RemoteEphemeral);
        State = HandshakeState.Zeroed;
    }
}
