namespace Firezone.Actors.Engine.Crypto;

/// <summary>
/// The AEAD of transport data messages (whitepaper section 5.4.6): ChaCha20-Poly1305 (RFC 8439)
/// with one of a session's two keys (T_send or T_recv), the nonce 32 zero bits || the 64-bit
/// little-endian counter, and empty associated data. <see cref="DotNetTransportAead"/> (.NET's
/// <see cref="System.Security.Cryptography.ChaCha20Poly1305"/>) is the engine's default; the host
/// passes a faster one where the platform has it (OpenSSL's EVP interface, in the Native project).
/// </summary>
public interface ITransportAead
{
    /// <summary>For the log: which implementation, and its version where it has one.</summary>
    string Name { get; }

    /// <summary>A key for every packet of one direction of one session (the key schedule is done once).</summary>
    TransportAeadKey CreateKey(ReadOnlySpan<byte> key32);
}
