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
