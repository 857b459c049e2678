using System.Security.Cryptography;
using Firezone.Actors.Engine.WireGuard;
using Org.BouncyCastle.Math.EC.Rfc7748;

namespace Firezone.Actors.Engine.Crypto;

/// <summary>
/// X25519 (RFC 7748) from BouncyCastle: key generation and the DH function of the whitepaper
/// (section 5.4). An all-zero shared secret (a low-order public key) is rejected, as the
/// whitepaper and every implementation do.
/// </summary>
public static class Curve25519
{
    public const int KeySize = 32;

    /// <summary>A fresh clamped private key from <paramref name="random"/>.</summary>
    public static void GeneratePrivateKey(IRandomSource random, Span<byte> privateKey32)
    {
        random.Fill(privateKey32[..KeySize]);
        X25519.ClampPrivateKey(privateKey32);
    }

    /// <summary>DH-Pubkey: the public key of <paramref name="privateKey"/>.</summary>
    public static void PublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey32) =>
        X25519.ScalarMultBase(privateKey, publicKey32);

    /// <summary>DH(private, public). False (and zeroes the output) when the result is all zero.</summary>
    public static bool TrySharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared32)
    {
        // CalculateAgreement returns false exactly when the shared point is all zero.
        if (!X25519.CalculateAgreement(privateKey, publicKey, shared32))
        {
            CryptographicOperations.ZeroMemory(shared32);
            return false;
        }
        return true;
    }

    /// <summary>Convenience for configuration: the public key of a WireGuard private key.</summary>
    public static WireGuardKey PublicKeyOf(WireGuardKey privateKey)
    {
        Span<byte> secret = stackalloc byte[KeySize];
        Span<byte> pub = stackalloc byte[KeySize];
        privateKey.CopyTo(secret);
        PublicKey(secret, pub);
        CryptographicOperations.ZeroMemory(secret);
        return new WireGuardKey(pub);
    }
}
