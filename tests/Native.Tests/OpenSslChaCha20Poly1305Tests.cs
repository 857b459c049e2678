using System.Buffers.Binary;
using System.Security.Cryptography;
using Firezone.Actors.Engine.Crypto;
using BcChaCha20Poly1305 = Org.BouncyCastle.Crypto.Modes.ChaCha20Poly1305;
using Org.BouncyCastle.Crypto.Parameters;

namespace Firezone.Actors.Native.Tests;

/// <summary>OpenSSL's ChaCha20-Poly1305 for transport messages against BouncyCastle's (an independent implementation) and .NET's.</summary>
public sealed partial class OpenSslChaCha20Poly1305Tests
{
    [System.Runtime.InteropServices.LibraryImport("libcrypto.so.3")]
    private static partial nuint ERR_peek_error();

    private static OpenSslChaCha20Poly1305 OpenSsl =>
        OpenSslChaCha20Poly1305.Instance ?? throw new InvalidOperationException("libcrypto's ChaCha20-Poly1305 did not load on this machine (Debian 12 has libssl3)");

    /// <summary>BouncyCastle's seal of <paramref name="plaintext"/>: ciphertext || tag, nonce 32 zero bits || counter (little-endian), no associated data.</summary>
    private static byte[] BouncyCastleSeal(byte[] key, ulong counter, byte[] plaintext)
    {
        var nonce = new byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(nonce.AsSpan(4), counter);
        var cipher = new BcChaCha20Poly1305();
        cipher.Init(true, new AeadParameters(new KeyParameter(key), 128, nonce));
        var output = new byte[cipher.GetOutputSize(plaintext.Length)];
        int written = cipher.ProcessBytes(plaintext, 0, plaintext.Length, output, 0);
        cipher.DoFinal(output, written);
        return output;
    }

    [Fact]
    public void It_loads_here_and_names_the_library()
    {
        Assert.StartsWith("OpenSSL ", OpenSsl.Name);
    }

    [Fact]
    public void Rfc8439_key_and_text_with_the_transport_nonce_as_BouncyCastle_computes_it()
    {
        byte[] key = Convert.FromHexString("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
        byte[] plaintext = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."u8.ToArray();
        byte[] expected = BouncyCastleSeal(key, 7, plaintext);
        Assert.StartsWith("bc811b8aaf3149c465dea2b403ef799a", Convert.ToHexStringLower(expected)); // the value the load check holds
        using var sealer = OpenSsl.CreateKey(key);
        var message = new byte[plaintext.Length + 16];
        plaintext.CopyTo(message, 0);
        sealer.Seal(7, message.AsSpan(0, plaintext.Length), message.AsSpan(plaintext.Length));
        Assert.Equal(expected, message);
    }

    /// <summary>
    /// A library whose context keeps the nonce of its first packet when later given only a new one
    /// (every later packet of a session under one keystream). Each of its keys is right on its first
    /// use, so a load check that uses each context once cannot tell it from a good one.
    /// </summary>
    private sealed class FirstNonceOnlyAead : ITransportAead
    {
        public string Name => "first nonce only";

        public TransportAeadKey CreateKey(ReadOnlySpan<byte> key32) => new Key(OpenSsl.CreateKey(key32));

        private sealed class Key(TransportAeadKey inner) : TransportAeadKey
        {
            private ulong? _first;

            public override void Seal(ulong counter, Span<byte> payload, Span<byte> tag16) => inner.Seal(_first ??= counter, payload, tag16);

            public override bool TryOpen(ulong counter, Span<byte> ciphertext, ReadOnlySpan<byte> tag16) => inner.TryOpen(_first ??= counter, ciphertext, tag16);

            protected override void Dispose(bool disposing) => inner.Dispose();
        }
    }

    [Fact]
    public void The_load_check_passes_OpenSsl_and_refuses_a_context_that_keeps_its_first_nonce()
    {
        Assert.True(OpenSslChaCha20Poly1305.PassesKnownAnswer(OpenSsl));
        Assert.False(OpenSslChaCha20Poly1305.PassesKnownAnswer(new FirstNonceOnlyAead()));
    }

    [Fact]
    public void Agrees_with_BouncyCastle_and_dotnet_both_ways_on_random_keys_counters_and_lengths()
    {
        for (int i = 0; i < 200; i++)
        {
            byte[] key = RandomNumberGenerator.GetBytes(32);
            ulong counter = i % 3 == 0 ? (ulong)i : BinaryPrimitives.ReadUInt64LittleEndian(RandomNumberGenerator.GetBytes(8));
            // 0 (a keepalive), odd sizes, and up to a jumbo packet.
            int length = i switch { 0 => 0, 1 => 1, 2 => 65519, _ => RandomNumberGenerator.GetInt32(0, 9001) };
            byte[] plaintext = RandomNumberGenerator.GetBytes(length);
            byte[] expected = BouncyCastleSeal(key, counter, plaintext);

            using var ours = OpenSsl.CreateKey(key);
            var message = new byte[length + 16];
            plaintext.CopyTo(message, 0);
            ours.Seal(counter, message.AsSpan(0, length), message.AsSpan(length));
            Assert.Equal(expected, message);

            using var dotnet = DotNetTransportAead.Instance.CreateKey(key);
            var viaDotnet = new byte[length + 16];
            plaintext.CopyTo(viaDotnet, 0);
            dotnet.Seal(counter, viaDotnet.AsSpan(0, length), viaDotnet.AsSpan(length));
            Assert.Equal(expected, viaDotnet);

            // Opened with a key of its own (a session's receiving key), as BouncyCastle sealed it.
            using var opener = OpenSsl.CreateKey(key);
            Assert.True(opener.TryOpen(counter, expected.AsSpan(0, length), expected.AsSpan(length)));
            Assert.Equal(plaintext, expected.AsSpan(0, length).ToArray());
        }
    }

    [Fact]
    public void One_key_seals_many_packets_with_their_own_nonces()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        using var sealer = OpenSsl.CreateKey(key);
        using var opener = OpenSsl.CreateKey(key);
        for (ulong counter = 0; counter < 64; counter++)
        {
            byte[] plaintext = RandomNumberGenerator.GetBytes(1420);
            var message = new byte[1436];
            plaintext.CopyTo(message, 0);
            sealer.Seal(counter, message.AsSpan(0, 1420), message.AsSpan(1420));
            Assert.Equal(BouncyCastleSeal(key, counter, plaintext), message);
            Assert.True(opener.TryOpen(counter, message.AsSpan(0, 1420), message.AsSpan(1420)));
            Assert.Equal(plaintext, message.AsSpan(0, 1420).ToArray());
        }
    }

    [Theory]
    [InlineData("tag")]
    [InlineData("ciphertext")]
    [InlineData("counter")]
    [InlineData("key")]
    [InlineData("keepalive tag")]
    public void A_forgery_gives_false_a_zeroed_output_and_no_queued_openssl_error(string change)
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        int length = change == "keepalive tag" ? 0 : 300;
        byte[] message = BouncyCastleSeal(key, 5, RandomNumberGenerator.GetBytes(length));
        ulong counter = 5;
        switch (change)
        {
            case "tag" or "keepalive tag":
                message[^1] ^= 0x80;
                break;
            case "ciphertext":
                message[17] ^= 0x01;
                break;
            case "counter":
                counter = 6;
                break;
            case "key":
                key[0] ^= 0x01;
                break;
        }
        using var opener = OpenSsl.CreateKey(key);
        Assert.False(opener.TryOpen(counter, message.AsSpan(0, length), message.AsSpan(length)));
        Assert.All(message.AsSpan(0, length).ToArray(), b => Assert.Equal(0, b));
        // Nothing left on this thread's error queue for the next OpenSSL call (.NET's own included).
        Assert.Equal(0UL, (ulong)ERR_peek_error());

        // The key stays usable after a refusal.
        byte[] good = BouncyCastleSeal(key, 9, [1, 2, 3]);
        Assert.True(opener.TryOpen(9, good.AsSpan(0, 3), good.AsSpan(3)));
        Assert.Equal(new byte[] { 1, 2, 3 }, good.AsSpan(0, 3).ToArray());
    }

    [Fact]
    public void A_short_tag_is_refused_and_a_wrong_key_length_or_a_disposed_key_throws()
    {
        using (var key = OpenSsl.CreateKey(new byte[32]))
        {
            var ciphertext = new byte[] { 1, 2, 3 };
            Assert.False(key.TryOpen(0, ciphertext, new byte[15]));
            Assert.All(ciphertext, b => Assert.Equal(0, b));
        }
        Assert.Throws<ArgumentException>(() => OpenSsl.CreateKey(new byte[16]));
        var disposed = OpenSsl.CreateKey(new byte[32]);
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => disposed.Seal(0, new byte[4], new byte[16]));
    }

    [Fact]
    public void A_tag_span_of_more_than_16_bytes_is_refused_not_checked_on_its_first_16()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        byte[] message = BouncyCastleSeal(key, 3, [1, 2, 3]);
        var longTag = new byte[17];
        message.AsSpan(3).CopyTo(longTag); // the right tag, and one byte more that nothing would check
        using var opener = OpenSsl.CreateKey(key);
        Assert.False(opener.TryOpen(3, message.AsSpan(0, 3), longTag));
        Assert.All(message.AsSpan(0, 3).ToArray(), b => Assert.Equal(0, b));
        using var sealer = OpenSsl.CreateKey(key);
        Assert.Throws<ArgumentException>(() => sealer.Seal(3, new byte[3], new byte[17]));
    }

    [Fact]
    public void Seal_and_open_allocate_nothing()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        using var sealer = OpenSsl.CreateKey(key);
        using var opener = OpenSsl.CreateKey(key);
        var message = new byte[1436];
        sealer.Seal(0, message.AsSpan(0, 1420), message.AsSpan(1420)); // warm-up
        Assert.True(opener.TryOpen(0, message.AsSpan(0, 1420), message.AsSpan(1420)));
        long allocated = long.MaxValue;
        for (int attempt = 0; attempt < 3 && allocated != 0; attempt++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (ulong counter = 1; counter <= 1000; counter++)
            {
                sealer.Seal(counter, message.AsSpan(0, 1420), message.AsSpan(1420));
                opener.TryOpen(counter, message.AsSpan(0, 1420), message.AsSpan(1420));
                message[1435] ^= 1;
                opener.TryOpen(counter, message.AsSpan(0, 1420), message.AsSpan(1420)); // a forgery too
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.Equal(0, allocated);
    }
}
