using System.Security.Cryptography;
using Firezone.Actors.Engine.Crypto;

namespace Firezone.Actors.Native.Tests;

/// <summary>OpenSSL's X25519 against RFC 7748's answers and against BouncyCastle's.</summary>
public sealed partial class OpenSslX25519Tests
{
    [System.Runtime.InteropServices.LibraryImport("libcrypto.so.3")]
    private static partial nuint ERR_peek_error();

    // The u-coordinates every clamped scalar maps to zero: 0, 1, the two of order 8, p - 1, p, p + 1
    // (libsodium's blocklist; wireguard-go checks the all-zero result they give instead).
    public static readonly TheoryData<string> LowOrderPoints = new()
    {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    };

    private static OpenSslX25519 OpenSsl =>
        OpenSslX25519.Instance ?? throw new InvalidOperationException("libcrypto's X25519 did not load on this machine (Debian 12 has libssl3)");

    [Fact]
    public void It_loads_here_and_names_the_library()
    {
        Assert.StartsWith("OpenSSL ", OpenSsl.Name);
    }

    [Theory]
    // RFC 7748 section 5.2 (input scalars unclamped, u with the top bit set in the second).
    [InlineData("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")]
    [InlineData("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493", "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")]
    public void Rfc7748_section_5_2(string scalar, string u, string expected)
    {
        var shared = new byte[32];
        Assert.True(OpenSsl.TrySharedSecret(Convert.FromHexString(scalar), Convert.FromHexString(u), shared));
        Assert.Equal(expected, Convert.ToHexStringLower(shared));
    }

    [Fact]
    public void Rfc7748_section_6_1_both_sides()
    {
        byte[] alicePrivate = Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        byte[] bobPrivate = Convert.FromHexString("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        byte[] shared = Convert.FromHexString("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        var alicePublic = new byte[32];
        var bobPublic = new byte[32];
        OpenSsl.PublicKey(alicePrivate, alicePublic);
        OpenSsl.PublicKey(bobPrivate, bobPublic);
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", Convert.ToHexStringLower(alicePublic));
        Assert.Equal("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", Convert.ToHexStringLower(bobPublic));

        var output = new byte[32];
        Assert.True(OpenSsl.TrySharedSecret(alicePrivate, bobPublic, output));
        Assert.Equal(shared, output);
        using var bob = OpenSsl.CreatePrivateKey(bobPrivate);
        Assert.True(bob.TrySharedSecret(alicePublic, output));
        Assert.Equal(shared, output);
    }

    [Fact]
    public void Agrees_with_BouncyCastle_on_random_and_unclamped_keys_and_non_canonical_public_keys()
    {
        var bc = BouncyCastleX25519.Instance;
        var privateKey = new byte[32];
        var publicKey = new byte[32];
        var expected = new byte[32];
        var actual = new byte[32];
        for (int i = 0; i < 300; i++)
        {
            RandomNumberGenerator.Fill(privateKey); // not clamped: both clamp (RFC 7748 section 5)
            RandomNumberGenerator.Fill(publicKey);  // top bit set half the time: both mask it
            if (i % 50 == 0)
            {
                // u >= p (2^255 - 19 .. 2^255 - 1 and those with the top bit): reduced mod p by both.
                Array.Fill(publicKey, (byte)0xff);
                publicKey[0] = (byte)(0xef + i / 50);
            }
            bc.PublicKey(privateKey, expected);
            OpenSsl.PublicKey(privateKey, actual);
            Assert.Equal(expected, actual);

            bool bcResult = bc.TrySharedSecret(privateKey, publicKey, expected);
            bool opensslResult = OpenSsl.TrySharedSecret(privateKey, publicKey, actual);
            Assert.Equal(bcResult, opensslResult);
            Assert.Equal(expected, actual);
            using var key = OpenSsl.CreatePrivateKey(privateKey);
            Assert.Equal(bcResult, key.TrySharedSecret(publicKey, actual));
            Assert.Equal(expected, actual);
            bc.PublicKey(privateKey, expected);
            key.PublicKey(actual);
            Assert.Equal(expected, actual);
        }
    }

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void A_low_order_public_key_gives_false_and_a_zeroed_output_like_BouncyCastle(string hex)
    {
        byte[] publicKey = Convert.FromHexString(hex);
        var privateKey = RandomNumberGenerator.GetBytes(32);
        var output = new byte[32];
        Array.Fill(output, (byte)0xaa);
        Assert.False(OpenSsl.TrySharedSecret(privateKey, publicKey, output));
        Assert.All(output, b => Assert.Equal(0, b));

        Array.Fill(output, (byte)0xaa);
        using var key = OpenSsl.CreatePrivateKey(privateKey);
        Assert.False(key.TrySharedSecret(publicKey, output));
        Assert.All(output, b => Assert.Equal(0, b));

        Assert.False(BouncyCastleX25519.Instance.TrySharedSecret(privateKey, publicKey, output));

        // A refused DH leaves nothing on this thread's OpenSSL error queue (OpenSSL queues "failed
        // during derivation"), so no later OpenSSL call on the thread finds a stale error.
        Assert.True(OpenSsl.TrySharedSecret(privateKey, RandomNumberGenerator.GetBytes(32), output));
        Assert.False(OpenSsl.TrySharedSecret(privateKey, publicKey, output));
        Assert.Equal(0UL, (ulong)ERR_peek_error());
    }

    [Fact]
    public void One_key_serves_many_threads_at_once_and_is_unusable_once_disposed()
    {
        var privateKey = RandomNumberGenerator.GetBytes(32);
        var key = OpenSsl.CreatePrivateKey(privateKey);
        var publicKeys = Enumerable.Range(0, 64).Select(_ => RandomNumberGenerator.GetBytes(32)).ToArray();
        var expected = publicKeys.Select(p =>
        {
            var shared = new byte[32];
            BouncyCastleX25519.Instance.TrySharedSecret(privateKey, p, shared);
            return shared;
        }).ToArray();
        int wrong = 0;
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ =>
        {
            var shared = new byte[32];
            for (int i = 0; i < publicKeys.Length * 3; i++)
            {
                int j = i % publicKeys.Length;
                if (!key.TrySharedSecret(publicKeys[j], shared) || !shared.AsSpan().SequenceEqual(expected[j]))
                {
                    Interlocked.Increment(ref wrong);
                }
            }
        });
        Assert.Equal(0, wrong);

        key.Dispose();
        Assert.Throws<ObjectDisposedException>(() => key.TrySharedSecret(publicKeys[0], new byte[32]));
    }
}
