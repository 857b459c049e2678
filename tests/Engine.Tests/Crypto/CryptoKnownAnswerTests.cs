using System.Security.Cryptography;
using System.Text;
using Firezone.Actors.Engine.Crypto;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Parameters;

namespace Firezone.Actors.Engine.Tests.Crypto;

/// <summary>Known-answer tests for every primitive the handshake and data path use.</summary>
public class CryptoKnownAnswerTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex);

    private static readonly byte[] Sunscreen = Encoding.ASCII.GetBytes(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");

    [Theory]
    // RFC 7748 section 5.2.
    [InlineData("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")]
    [InlineData("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493", "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")]
    public void X25519_matches_rfc7748_section_5_2(string scalar, string u, string expected)
    {
        var shared = new byte[32];
        Assert.True(BouncyCastleX25519.Instance.TrySharedSecret(Hex(scalar), Hex(u), shared));
        Assert.Equal(expected, Convert.ToHexStringLower(shared));
    }

    [Fact]
    public void X25519_diffie_hellman_matches_rfc7748_section_6_1()
    {
        var alicePrivate = Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        var bobPrivate = Hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        var alicePublic = new byte[32];
        var bobPublic = new byte[32];
        BouncyCastleX25519.Instance.PublicKey(alicePrivate, alicePublic);
        BouncyCastleX25519.Instance.PublicKey(bobPrivate, bobPublic);
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", Convert.ToHexStringLower(alicePublic));
        Assert.Equal("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", Convert.ToHexStringLower(bobPublic));
        var k1 = new byte[32];
        var k2 = new byte[32];
        Assert.True(BouncyCastleX25519.Instance.TrySharedSecret(alicePrivate, bobPublic, k1));
        Assert.True(BouncyCastleX25519.Instance.TrySharedSecret(bobPrivate, alicePublic, k2));
        Assert.Equal("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", Convert.ToHexStringLower(k1));
        Assert.Equal(k1, k2);
    }

    [Fact]
    public void X25519_rejects_an_all_zero_shared_secret_from_a_low_order_point()
    {
        var privateKey = Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        var shared = new byte[32];
        Assert.False(BouncyCastleX25519.Instance.TrySharedSecret(privateKey, new byte[32], shared)); // u = 0
        var one = new byte[32];
        one[0] = 1;
        Assert.False(BouncyCastleX25519.Instance.TrySharedSecret(privateKey, one, shared)); // u = 1, order 1
        Assert.All(shared, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Blake2s_abc_matches_rfc7693_appendix_b()
    {
        var digest = new byte[32];
        Blake2s.Hash("abc"u8, digest);
        Assert.Equal("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982", Convert.ToHexStringLower(digest));
    }

    /// <summary>
    /// RFC 7693 Appendix E: hashes of Fibonacci sequences, unkeyed and keyed, for output lengths
    /// 16, 20, 28, 32 and input lengths 0..1024, all hashed into one digest. The keyed 16-byte case
    /// runs through <see cref="Blake2s.Mac"/> (WireGuard's MAC), the 32-byte unkeyed through <see cref="Blake2s.Hash"/>.
    /// </summary>
    [Fact]
    public void Blake2s_keyed_and_unkeyed_match_rfc7693_appendix_e_self_test()
    {
        int[] outLengths = [16, 20, 28, 32];
        int[] inLengths = [0, 3, 64, 65, 255, 1024];
        var grand = new Blake2sDigest(256);
        var input = new byte[1024];
        var key = new byte[32];
        var md = new byte[32];
        foreach (int outLength in outLengths)
        {
            foreach (int inLength in inLengths)
            {
                SelfTestSequence(input.AsSpan(0, inLength), (uint)inLength);
                if (outLength == 32)
                {
                    Blake2s.Hash(input.AsSpan(0, inLength), md);
                }
                else
                {
                    var plain = new Blake2sDigest(outLength * 8);
                    plain.BlockUpdate(input.AsSpan(0, inLength));
                    plain.DoFinal(md);
                }
                grand.BlockUpdate(md.AsSpan(0, outLength));

                SelfTestSequence(key.AsSpan(0, outLength), (uint)outLength);
                if (outLength == 16)
                {
                    Blake2s.Mac(key.AsSpan(0, outLength), input.AsSpan(0, inLength), md);
                }
                else
                {
                    var keyed = new Blake2sDigest(key.AsSpan(0, outLength).ToArray(), outLength, null, null);
                    keyed.BlockUpdate(input.AsSpan(0, inLength));
                    keyed.DoFinal(md);
                }
                grand.BlockUpdate(md.AsSpan(0, outLength));
            }
        }
        var result = new byte[32];
        grand.DoFinal(result);
        Assert.Equal("6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe", Convert.ToHexStringLower(result));
    }

    private static void SelfTestSequence(Span<byte> output, uint seed)
    {
        uint a = unchecked(0xDEAD4BAD * seed);
        uint b = 1;
        for (int i = 0; i < output.Length; i++)
        {
            uint t = unchecked(a + b);
            a = b;
            b = t;
            output[i] = (byte)(t >> 24);
        }
    }

    /// <summary>HMAC-BLAKE2s has no RFC vector; check it against RFC 2104 written out over plain BLAKE2s.</summary>
    [Theory]
    [InlineData(0, 0)]
    [InlineData(32, 1)]
    [InlineData(32, 100)]
    [InlineData(64, 64)]
    [InlineData(80, 3)] // a key longer than the block is hashed first (RFC 2104 section 2)
    public void Hmac_blake2s_matches_rfc2104_over_blake2s(int keyLength, int dataLength)
    {
        var random = new Random(keyLength * 1000 + dataLength);
        var key = new byte[keyLength];
        var data = new byte[dataLength];
        random.NextBytes(key);
        random.NextBytes(data);

        var blockKey = new byte[64];
        if (key.Length > 64)
        {
            Blake2s.Hash(key, blockKey);
        }
        else
        {
            key.CopyTo(blockKey, 0);
        }
        var inner = new byte[64];
        var outer = new byte[64];
        for (int i = 0; i < 64; i++)
        {
            inner[i] = (byte)(blockKey[i] ^ 0x36);
            outer[i] = (byte)(blockKey[i] ^ 0x5c);
        }
        var innerHash = new byte[32];
        Blake2s.Hash(inner, data, innerHash);
        var expected = new byte[32];
        Blake2s.Hash(outer, innerHash, expected);

        var actual = new byte[32];
        HmacBlake2s.Compute(key, data, default, actual);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void ChaCha20Poly1305_matches_rfc8439_section_2_8_2_in_place_with_a_reused_instance()
    {
        var key = Hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
        var nonce = Hex("070000004041424344454647");
        var aad = Hex("50515253c0c1c2c3c4c5c6c7");
        const string expectedCiphertext = "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116";
        const string expectedTag = "1ae10b594f09e26a7e902ecbd0600691";

        using var aead = new ChaCha20Poly1305(key);
        for (int round = 0; round < 2; round++)
        {
            var buffer = (byte[])Sunscreen.Clone();
            var tag = new byte[16];
            aead.Encrypt(nonce, buffer, buffer, tag, aad); // in place, as the data path does
            Assert.Equal(expectedCiphertext, Convert.ToHexStringLower(buffer));
            Assert.Equal(expectedTag, Convert.ToHexStringLower(tag));
            aead.Decrypt(nonce, buffer, tag, buffer, aad);
            Assert.Equal(Sunscreen, buffer);
        }
    }

    [Fact]
    public void Noise_aead_uses_a_little_endian_counter_after_four_zero_bytes()
    {
        var nonce = new byte[12];
        NoiseAead.WriteNonce(0x0102030405060708, nonce);
        Assert.Equal("000000000807060504030201", Convert.ToHexStringLower(nonce));

        // RFC 8439's vector nonce is 07000000 || 4041424344454647; with our layout the same AEAD
        // under key K and counter c must equal System's ChaCha20Poly1305 with nonce 0^32 || LE64(c).
        var key = Hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
        var aad = Hex("50515253c0c1c2c3c4c5c6c7");
        var sealedData = new byte[Sunscreen.Length + 16];
        NoiseAead.Seal(key, 0x4746454443424140, Sunscreen, aad, sealedData);
        using var reference = new ChaCha20Poly1305(key);
        var expected = new byte[Sunscreen.Length];
        var tag = new byte[16];
        reference.Encrypt(Hex("000000004041424344454647"), Sunscreen, expected, tag, aad);
        Assert.Equal(expected, sealedData[..Sunscreen.Length]);
        Assert.Equal(tag, sealedData[Sunscreen.Length..]);
        var opened = new byte[Sunscreen.Length];
        Assert.True(NoiseAead.TryOpen(key, 0x4746454443424140, sealedData, aad, opened));
        Assert.Equal(Sunscreen, opened);
        sealedData[3] ^= 1;
        Assert.False(NoiseAead.TryOpen(key, 0x4746454443424140, sealedData, aad, opened));
    }

    /// <summary>
    /// BouncyCastle keeps HChaCha20 internal, so its section 2.2.1 output is checked through what it
    /// is for: XChaCha20(key, n) must produce the keystream of IETF ChaCha20 keyed with
    /// HChaCha20(key, n[0..16]) and nonce 0^32 || n[16..24] (draft section 2.3).
    /// </summary>
    [Fact]
    public void HChaCha20_matches_draft_irtf_cfrg_xchacha_section_2_2_1()
    {
        var key = Hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        var nonce16 = Hex("000000090000004a0000000031415927");
        var subkey = Hex("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc");
        byte[] tail = [1, 2, 3, 4, 5, 6, 7, 8];

        var xchacha = new XChaCha20Engine();
        xchacha.Init(true, new ParametersWithIV(new KeyParameter(key), [.. nonce16, .. tail]));
        var viaXChaCha = new byte[256];
        xchacha.ProcessBytes(new byte[256], viaXChaCha);

        var chacha = new ChaCha7539Engine();
        chacha.Init(true, new ParametersWithIV(new KeyParameter(subkey), [0, 0, 0, 0, .. tail]));
        var viaSubkey = new byte[256];
        chacha.ProcessBytes(new byte[256], viaSubkey);

        Assert.Equal(viaSubkey, viaXChaCha);
    }

    [Fact]
    public void XChaCha20Poly1305_matches_draft_irtf_cfrg_xchacha_appendix_a_3_1()
    {
        var key = Hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
        var nonce = Hex("404142434445464748494a4b4c4d4e4f5051525354555657");
        var aad = Hex("50515253c0c1c2c3c4c5c6c7");
        var sealedData = new byte[Sunscreen.Length + 16];
        XChaCha20Poly1305Aead.Seal(key, nonce, Sunscreen, aad, sealedData);
        Assert.Equal(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e"
            + "c0875924c1c7987947deafd8780acf49",
            Convert.ToHexStringLower(sealedData));
        var opened = new byte[Sunscreen.Length];
        Assert.True(XChaCha20Poly1305Aead.TryOpen(key, nonce, sealedData, aad, opened));
        Assert.Equal(Sunscreen, opened);
        sealedData[^1] ^= 0x80;
        Assert.False(XChaCha20Poly1305Aead.TryOpen(key, nonce, sealedData, aad, opened));
    }

    [Fact]
    public void Kdf_outputs_chain_as_the_whitepaper_defines()
    {
        var key = new byte[32];
        var input = new byte[40];
        new Random(7).NextBytes(key);
        new Random(8).NextBytes(input);
        var prk = new byte[32];
        HmacBlake2s.Compute(key, input, default, prk);
        var t1 = new byte[32];
        var t2 = new byte[32];
        var t3 = new byte[32];
        HmacBlake2s.Compute(prk, [1], default, t1);
        HmacBlake2s.Compute(prk, t1, [2], t2);
        HmacBlake2s.Compute(prk, t2, [3], t3);

        var k1 = new byte[32];
        HmacBlake2s.Kdf1(key, input, k1);
        Assert.Equal(t1, k1);
        var a = new byte[32];
        var b = new byte[32];
        HmacBlake2s.Kdf2(key, input, a, b);
        Assert.Equal(t1, a);
        Assert.Equal(t2, b);
        var c = new byte[32];
        HmacBlake2s.Kdf3(key, input, a, b, c);
        Assert.Equal(t1, a);
        Assert.Equal(t2, b);
        Assert.Equal(t3, c);
    }
}
