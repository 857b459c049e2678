using System.Security.Cryptography;
using Org.BouncyCastle.Math.EC.Rfc7748;

namespace Firezone.Actors.Engine.Crypto;

/// <summary>X25519 from BouncyCastle (managed, portable): the engine's default <see cref="IX25519"/>.</summary>
public sealed class BouncyCastleX25519 : IX25519
{
    public static readonly BouncyCastleX25519 Instance = new();

    private BouncyCastleX25519()
    {
    }

    public string Name => "BouncyCastle";

    public void PublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey32) =>
        X25519.ScalarMultBase(privateKey[..Curve25519.KeySize], publicKey32);

    public bool TrySharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared32)
    {
        // CalculateAgreement returns false exactly when the shared point is all zero.
        if (!X25519.CalculateAgreement(privateKey[..Curve25519.KeySize], publicKey[..Curve25519.KeySize], shared32))
        {
            CryptographicOperations.ZeroMemory(shared32[..Curve25519.KeySize]);
            return false;
        }
        return true;
    }

    public X25519PrivateKey CreatePrivateKey(ReadOnlySpan<byte> privateKey) => new Key(privateKey);

    private sealed class Key : X25519PrivateKey
    {
        private readonly byte[] _key = new byte[Curve25519.KeySize];

        public Key(ReadOnlySpan<byte> privateKey) => privateKey[..Curve25519.KeySize].CopyTo(_key);

        public override void PublicKey(Span<byte> publicKey32) => Instance.PublicKey(_key, publicKey32);

        public override bool TrySharedSecret(ReadOnlySpan<byte> publicKey, Span<byte> shared32) =>
            Instance.TrySharedSecret(_key, publicKey, shared32);

        protected override void Dispose(bool disposing) => CryptographicOperations.ZeroMemory(_key);
    }
}
