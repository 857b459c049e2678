using System.Security.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Parameters;
using BcXChaCha20Poly1305 = Org.BouncyCastle.Crypto.Modes.XChaCha20Poly1305;

namespace Firezone.Actors.Engine.Crypto;

/// <summary>
/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) from BouncyCastle, for the cookie reply
/// (whitepaper section 5.4.7: XAEAD with a random 24-byte nonce). Cookie path only.
/// </summary>
public static class XChaCha20Poly1305Aead
{
    public const int KeySize = 32;
    public const int NonceSize = 24;
    public const int TagSize = 16;

    /// <summary>Writes ciphertext || tag (plaintext length + 16 bytes) to <paramref name="destination"/>.</summary>
    public static void Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData, Span<byte> destination)
    {
        var cipher = Create(true, key, nonce, associatedData);
        int written = cipher.ProcessBytes(plaintext, destination);
        cipher.DoFinal(destination[written..]);
    }

    /// <summary>Opens ciphertext || tag into <paramref name="destination"/> (ciphertext length - 16). False when the tag does not verify.</summary>
    public static bool TryOpen(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> sealedData, ReadOnlySpan<byte> associatedData, Span<byte> destination)
    {
        if (sealedData.Length < TagSize || destination.Length < sealedData.Length - TagSize)
        {
            return false;
        }
        var cipher = Create(false, key, nonce, associatedData);
        // BouncyCastle buffers the tag internally and may need the full output size while processing.
        byte[] output = new byte[sealedData.Length];
        try
        {
            int written = cipher.ProcessBytes(sealedData, output);
            written += cipher.DoFinal(output.AsSpan(written));
            output.AsSpan(0, written).CopyTo(destination);
            return true;
        }
        catch (InvalidCipherTextException)
        {
            return false;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(output);
        }
    }

    private static BcXChaCha20Poly1305 Create(bool forEncryption, ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> associatedData)
    {
        var cipher = new BcXChaCha20Poly1305();
        cipher.Init(forEncryption, new AeadParameters(new KeyParameter(key), TagSize * 8, nonce.ToArray(), associatedData.ToArray()));
        return cipher;
    }
}
