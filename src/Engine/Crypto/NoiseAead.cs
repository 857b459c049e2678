using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Firezone.Actors.Engine.Crypto;

/// <summary>
/// AEAD(key, counter, plain, auth) of the whitepaper (section 5.4): ChaCha20-Poly1305 (RFC 8439)
/// with the nonce 32 zero bits || 64-bit little-endian counter. The handshake uses it with counter 0
/// and a one-shot key; the data path keeps one <see cref="ChaCha20Poly1305"/> per keypair instead
/// (see <c>Keypair</c>), through <see cref="WriteNonce"/>.
/// </summary>
public static class NoiseAead
{
    public const int KeySize = 32;
    public const int NonceSize = 12;
    public const int TagSize = 16;

    public static void WriteNonce(ulong counter, Span<byte> nonce12)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(nonce12, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(nonce12[4..], counter);
    }

    /// <summary>Writes ciphertext || tag to <paramref name="destination"/> (plaintext length + 16).</summary>
    public static void Seal(ReadOnlySpan<byte> key, ulong counter, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData, Span<byte> destination)
    {
        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(counter, nonce);
        using var aead = new ChaCha20Poly1305(key);
        aead.Encrypt(nonce, plaintext, destination[..plaintext.Length], destination.Slice(plaintext.Length, TagSize), associatedData);
    }

    /// <summary>Opens ciphertext || tag into <paramref name="destination"/>. False when the tag does not verify.</summary>
    public static bool TryOpen(ReadOnlySpan<byte> key, ulong counter, ReadOnlySpan<byte> sealedData, ReadOnlySpan<byte> associatedData, Span<byte> destination)
    {
        if (sealedData.Length < TagSize)
        {
            return false;
        }
        int plainLength = sealedData.Length - TagSize;
        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(counter, nonce);
        using var aead = new ChaCha20Poly1305(key);
        try
        {
            aead.Decrypt(nonce, sealedData[..plainLength], sealedData[plainLength..], destination[..plainLength], associatedData);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }
}
