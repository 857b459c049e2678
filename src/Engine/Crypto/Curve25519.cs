using System.Security.Cryptography;
using Firezone.Actors.Engine.WireGuard;
using Org.BouncyCastle.Math.EC.Rfc7748;

namespace Firezone.Actors.Engine.Crypto;

/// <summary>
/// X25519 key helpers: fresh private keys, and the public key of a configured private key (with
/// <see cref="BouncyCastleX25519"/>). The DH computations of the handshake go through the device's
/// <see cref="IX25519"/>.
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

    /// <summary>
    /// A configured private key as X25519 uses it (RFC 7748 section 5: the low 3 bits cleared, bit 255
    /// cleared, bit 254 set), as wireguard-go stores a key it is given: `wg show IF private-key` then
    /// prints the clamped key, and a key that differs only in those bits is the same key. The zero
    /// key ("no private key" in the UAPI) stays zero, as in wireguard-go.
    /// </summary>
    public static WireGuardKey Clamp(WireGuardKey privateKey)
    {
        if (privateKey.IsZero)
        {
            return privateKey;
        }
        Span<byte> secret = stackalloc byte[KeySize];
        privateKey.CopyTo(secret);
        X25519.ClampPrivateKey(secret);
        var clamped = new WireGuardKey(secret);
        CryptographicOperations.ZeroMemory(secret);
        return clamped;
    }

    /// <summary>Convenience for configuration: the public key of a WireGuard private key.</summary>
    public static WireGuardKey PublicKeyOf(WireGuardKey privateKey)
    {
        Span<byte> secret = stackalloc byte[KeySize];
        Span<byte> pub = stackalloc byte[KeySize];
        privateKey.CopyTo(secret);
        BouncyCastleX25519.Instance.PublicKey(secret, pub);
        CryptographicOperations.ZeroMemory(secret);
        return new WireGuardKey(pub);
    }
}
