namespace Firezone.Actors.Engine.Crypto;

/// <summary>
/// X25519 (RFC 7748), the DH and DH-Pubkey functions of the whitepaper (section 5.4), as the
/// handshake uses them. <see cref="BouncyCastleX25519"/> (managed) is the engine's default; the host
/// passes a faster one where the platform has it (OpenSSL's, in the Native project). Every
/// implementation clamps private keys and masks the public key's top bit as RFC 7748 says, and
/// rejects an all-zero shared secret (a low-order public key), as the whitepaper and every
/// WireGuard implementation do: as false, never thrown (crafted public keys cannot make a call throw;
/// only an internal failure of the implementation may). Thread-safe: peers handshake on many
/// threads at once.
/// </summary>
public interface IX25519
{
    /// <summary>For the log: which implementation, and its version where it has one.</summary>
    string Name { get; }

    /// <summary>DH-Pubkey: the public key of <paramref name="privateKey"/> (32 bytes).</summary>
    void PublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey32);

    /// <summary>DH(private, public). False, with <paramref name="shared32"/> zeroed, when the result is all zero.</summary>
    bool TrySharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared32);

    /// <summary>
    /// A private key used more than once (the device's static key: one DH per initiation received
    /// and per response consumed; an ephemeral key: its public key and one or two DH computations),
    /// in the form this implementation computes with fastest.
    /// </summary>
    X25519PrivateKey CreatePrivateKey(ReadOnlySpan<byte> privateKey);
}
