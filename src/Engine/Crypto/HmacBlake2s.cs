using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Macs;
using Org.BouncyCastle.Crypto.Parameters;

namespace Firezone.Actors.Engine.Crypto;

/// <summary>
/// HMAC (RFC 2104) over BLAKE2s-256, BouncyCastle's <see cref="HMac"/> over <see cref="Blake2sDigest"/>
/// (block size 64), and the HKDF-style KDF built on it (whitepaper section 5.4: Kdf1, Kdf2, Kdf3).
/// </summary>
public static class HmacBlake2s
{
    public const int Size = 32;

    /// <summary>HMAC(key, a || b).</summary>
    public static void Compute(ReadOnlySpan<byte> key, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> destination32)
    {
        byte[] keyCopy = key.ToArray();
        try
        {
            var hmac = new HMac(new Blake2sDigest(Size * 8));
            hmac.Init(new KeyParameter(keyCopy));
            hmac.BlockUpdate(a);
            hmac.BlockUpdate(b);
            hmac.DoFinal(destination32);
            hmac.Reset();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(keyCopy);
        }
    }

    /// <summary>Kdf1(key, input) = τ1, where τ0 = HMAC(key, input), τ1 = HMAC(τ0, 0x1).</summary>
    public static void Kdf1(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1)
    {
        Span<byte> prk = stackalloc byte[Size];
        Compute(key, input, default, prk);
        Compute(prk, [0x1], default, t1);
        CryptographicOperations.ZeroMemory(prk);
    }

    /// <summary>Kdf2: τ1 = HMAC(τ0, 0x1), τ2 = HMAC(τ0, τ1 || 0x2).</summary>
    public static void Kdf2(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1, Span<byte> t2)
    {
        Span<byte> prk = stackalloc byte[Size];
        Span<byte> first = stackalloc byte[Size];
        Compute(key, input, default, prk);
        Compute(prk, [0x1], default, first);
        Compute(prk, first, [0x2], t2);
        first.CopyTo(t1);
        CryptographicOperations.ZeroMemory(prk);
        CryptographicOperations.ZeroMemory(first);
    }

    /// <summary>Kdf3: τ1, τ2 as in Kdf2, τ3 = HMAC(τ0, τ2 || 0x3).</summary>
    public static void Kdf3(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1, Span<byte> t2, Span<byte> t3)
    {
        Span<byte> prk = stackalloc byte[Size];
        Span<byte> first = stackalloc byte[Size];
        Span<byte> second = stackalloc byte[Size];
        Compute(key, input, default, prk);
        Compute(prk, [0x1], default, first);
        Compute(prk, first, [0x2], second);
        Compute(prk, second, [0x3], t3);
        first.CopyTo(t1);
        second.CopyTo(t2);
        CryptographicOperations.ZeroMemory(prk);
        CryptographicOperations.ZeroMemory(first);
        CryptographicOperations.ZeroMemory(second);
    }
}
