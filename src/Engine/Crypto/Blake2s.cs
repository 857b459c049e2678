using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Digests;

namespace Firezone.Actors.Engine.Crypto;

/// <summary>
/// BLAKE2s (RFC 7693) from BouncyCastle, in the two forms the WireGuard whitepaper uses
/// (section 5.4): HASH, the plain 32-byte digest, and MAC, the keyed 16-byte digest used for
/// mac1, mac2 and cookies. Handshake path only: each call creates its own digest, so the functions
/// are safe from any thread.
/// </summary>
public static class Blake2s
{
    public const int HashSize = 32;
    public const int MacSize = 16;

    /// <summary>HASH(a || b) with a 32-byte output.</summary>
    public static void Hash(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> destination32)
    {
        var digest = new Blake2sDigest(HashSize * 8);
        digest.BlockUpdate(a);
        digest.BlockUpdate(b);
        digest.DoFinal(destination32);
    }

    /// <summary>HASH(data) with a 32-byte output.</summary>
    public static void Hash(ReadOnlySpan<byte> data, Span<byte> destination32) => Hash(data, default, destination32);

    /// <summary>MAC(key, data): keyed BLAKE2s with a 16-byte output (whitepaper section 5.4, "Mac").</summary>
    public static void Mac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data, Span<byte> destination16)
    {
        byte[] keyCopy = key.ToArray();
        try
        {
            var digest = new Blake2sDigest(keyCopy, MacSize, null, null);
            digest.BlockUpdate(data);
            digest.DoFinal(destination16);
            digest.ClearKey();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(keyCopy);
        }
    }
}
