using System.Buffers.Binary;
using System.Text;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math.EC.Rfc7748;
using BcChaCha20Poly1305 = Org.BouncyCastle.Crypto.Modes.ChaCha20Poly1305;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// A second, deliberately plain implementation of the WireGuard handshake messages, written
/// straight from whitepaper section 5.4 with different building blocks than the engine (BouncyCastle's
/// ChaCha20-Poly1305 instead of .NET's, HMAC written out per RFC 2104, byte arrays everywhere, the
/// initial chaining key and hash as published constants). The engine's messages must match it byte
/// for byte; it is the cross-check for wire compatibility short of running wireguard-go.
/// </summary>
public static class ReferenceWireGuard
{
    /// <summary>HASH("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"), as published in boringtun's handshake.rs.</summary>
    public static readonly byte[] InitialChainKey =
    [
        96, 226, 109, 174, 243, 39, 239, 192, 46, 195, 53, 226, 160, 37, 210, 208, 22, 235, 66, 6, 248,
        114, 119, 245, 45, 56, 209, 152, 139, 120, 205, 54,
    ];

    /// <summary>HASH(C0 || "WireGuard v1 zx2c4 Jason@zx2c4.com").</summary>
    public static readonly byte[] InitialHash =
    [
        34, 17, 179, 97, 8, 26, 197, 102, 105, 18, 67, 219, 69, 138, 213, 50, 45, 156, 108, 102, 34,
        147, 232, 183, 14, 225, 156, 101, 186, 7, 158, 243,
    ];

    public static byte[] Hash(params byte[][] parts)
    {
        var digest = new Blake2sDigest(256);
        foreach (var part in parts)
        {
            digest.BlockUpdate(part, 0, part.Length);
        }
        var output = new byte[32];
        digest.DoFinal(output, 0);
        return output;
    }

    public static byte[] Mac(byte[] key, byte[] data)
    {
        var digest = new Blake2sDigest(key, 16, null, null);
        digest.BlockUpdate(data, 0, data.Length);
        var output = new byte[16];
        digest.DoFinal(output, 0);
        return output;
    }

    public static byte[] Hmac(byte[] key, params byte[][] parts)
    {
        var block = new byte[64];
        (key.Length > 64 ? Hash(key) : key).CopyTo(block, 0);
        var ipad = block.Select(b => (byte)(b ^ 0x36)).ToArray();
        var opad = block.Select(b => (byte)(b ^ 0x5c)).ToArray();
        return Hash(opad, Hash([ipad, .. parts]));
    }

    public static byte[][] Kdf(int n, byte[] key, byte[] input)
    {
        var prk = Hmac(key, input);
        var outputs = new byte[n][];
        byte[] previous = [];
        for (int i = 0; i < n; i++)
        {
            previous = Hmac(prk, previous, [(byte)(i + 1)]);
            outputs[i] = previous;
        }
        return outputs;
    }

    public static byte[] Aead(byte[] key, ulong counter, byte[] plaintext, byte[] associatedData)
    {
        var cipher = new BcChaCha20Poly1305();
        cipher.Init(true, new AeadParameters(new KeyParameter(key), 128, Nonce(counter), associatedData));
        var output = new byte[plaintext.Length + 16];
        int written = cipher.ProcessBytes(plaintext, 0, plaintext.Length, output, 0);
        cipher.DoFinal(output, written);
        return output;
    }

    public static byte[]? AeadOpen(byte[] key, ulong counter, byte[] sealedData, byte[] associatedData)
    {
        var cipher = new BcChaCha20Poly1305();
        cipher.Init(false, new AeadParameters(new KeyParameter(key), 128, Nonce(counter), associatedData));
        var output = new byte[sealedData.Length];
        try
        {
            int written = cipher.ProcessBytes(sealedData, 0, sealedData.Length, output, 0);
            written += cipher.DoFinal(output, written);
            return output[..written];
        }
        catch (Org.BouncyCastle.Crypto.InvalidCipherTextException)
        {
            return null;
        }
    }

    private static byte[] Nonce(ulong counter)
    {
        var nonce = new byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(nonce.AsSpan(4), counter);
        return nonce;
    }

    public static byte[] PublicKey(byte[] privateKey)
    {
        var output = new byte[32];
        X25519.ScalarMultBase(privateKey, 0, output, 0);
        return output;
    }

    public static byte[] Dh(byte[] privateKey, byte[] publicKey)
    {
        var output = new byte[32];
        X25519.ScalarMult(privateKey, 0, publicKey, 0, output, 0);
        return output;
    }

    /// <summary>32 reproducible random bytes (a key before clamping) from <paramref name="seed"/>.</summary>
    public static byte[] KeyBytes(int seed)
    {
        var bytes = new byte[32];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static byte[] Clamp(byte[] privateKey)
    {
        var clamped = (byte[])privateKey.Clone();
        clamped[0] &= 248;
        clamped[31] = (byte)((clamped[31] & 127) | 64);
        return clamped;
    }

    /// <summary>TAI64N as wireguard-go writes it: 2^62 + 10 + seconds, nanoseconds rounded down to 2^24.</summary>
    public static byte[] Tai64N(DateTime utc)
    {
        var output = new byte[12];
        long ticks = utc.Ticks - DateTime.UnixEpoch.Ticks;
        BinaryPrimitives.WriteUInt64BigEndian(output, 0x400000000000000aUL + (ulong)(ticks / TimeSpan.TicksPerSecond));
        BinaryPrimitives.WriteUInt32BigEndian(output.AsSpan(8), (uint)(ticks % TimeSpan.TicksPerSecond * 100) & ~0xFFFFFFu);
        return output;
    }

    public sealed class State
    {
        public byte[] ChainKey = [];
        public byte[] Hash = [];
        public byte[] EphemeralPrivate = [];
        public byte[] RemoteEphemeral = [];
        public uint LocalIndex;
        public uint RemoteIndex;
    }

    private static byte[] Le32(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        return bytes;
    }

    /// <summary>Section 5.4.2 with mac1 (section 5.4.4) and an all-zero mac2.</summary>
    public static byte[] CreateInitiation(byte[] staticPrivate, byte[] remoteStatic, byte[] ephemeralPrivate, uint sender, byte[] timestamp, out State state)
    {
        var c = InitialChainKey;
        var h = Hash(InitialHash, remoteStatic);
        var ephemeral = PublicKey(ephemeralPrivate);
        c = Kdf(1, c, ephemeral)[0];
        h = Hash(h, ephemeral);
        var k = Kdf(2, c, Dh(ephemeralPrivate, remoteStatic));
        c = k[0];
        var encryptedStatic = Aead(k[1], 0, PublicKey(staticPrivate), h);
        h = Hash(h, encryptedStatic);
        k = Kdf(2, c, Dh(staticPrivate, remoteStatic));
        c = k[0];
        var encryptedTimestamp = Aead(k[1], 0, timestamp, h);
        h = Hash(h, encryptedTimestamp);

        byte[] body = [1, 0, 0, 0, .. Le32(sender), .. ephemeral, .. encryptedStatic, .. encryptedTimestamp];
        var mac1 = Mac(Hash(Encoding.ASCII.GetBytes("mac1----"), remoteStatic), body);
        state = new State { ChainKey = c, Hash = h, EphemeralPrivate = ephemeralPrivate, LocalIndex = sender };
        return [.. body, .. mac1, .. new byte[16]];
    }

    /// <summary>Section 5.4.3 with mac1.</summary>
    public static byte[] CreateResponse(State consumed, byte[] remoteStatic, byte[] ephemeralPrivate, uint sender, byte[] presharedKey)
    {
        var c = consumed.ChainKey;
        var h = consumed.Hash;
        var ephemeral = PublicKey(ephemeralPrivate);
        c = Kdf(1, c, ephemeral)[0];
        h = Hash(h, ephemeral);
        c = Kdf(1, c, Dh(ephemeralPrivate, consumed.RemoteEphemeral))[0];
        c = Kdf(1, c, Dh(ephemeralPrivate, remoteStatic))[0];
        var k = Kdf(3, c, presharedKey);
        c = k[0];
        h = Hash(h, k[1]);
        var empty = Aead(k[2], 0, [], h);
        h = Hash(h, empty);
        byte[] body = [2, 0, 0, 0, .. Le32(sender), .. Le32(consumed.RemoteIndex), .. ephemeral, .. empty];
        var mac1 = Mac(Hash(Encoding.ASCII.GetBytes("mac1----"), remoteStatic), body);
        consumed.ChainKey = c;
        consumed.Hash = h;
        consumed.LocalIndex = sender;
        return [.. body, .. mac1, .. new byte[16]];
    }

    /// <summary>Responder side of section 5.4.2: the state after the initiation, or null when it does not verify.</summary>
    public static State? ConsumeInitiation(byte[] message, byte[] staticPrivate, byte[] expectedRemoteStatic, out byte[] timestamp)
    {
        timestamp = [];
        var localPublic = PublicKey(staticPrivate);
        if (!Mac(Hash(Encoding.ASCII.GetBytes("mac1----"), localPublic), message[..116]).AsSpan().SequenceEqual(message.AsSpan(116, 16)))
        {
            return null;
        }
        var ephemeral = message[8..40];
        var c = Kdf(1, InitialChainKey, ephemeral)[0];
        var h = Hash(Hash(InitialHash, localPublic), ephemeral);
        var k = Kdf(2, c, Dh(staticPrivate, ephemeral));
        c = k[0];
        var remoteStatic = AeadOpen(k[1], 0, message[40..88], h);
        if (remoteStatic is null || !remoteStatic.AsSpan().SequenceEqual(expectedRemoteStatic))
        {
            return null;
        }
        h = Hash(h, message[40..88]);
        k = Kdf(2, c, Dh(staticPrivate, remoteStatic));
        c = k[0];
        var opened = AeadOpen(k[1], 0, message[88..116], h);
        if (opened is null)
        {
            return null;
        }
        timestamp = opened;
        h = Hash(h, message[88..116]);
        return new State { ChainKey = c, Hash = h, RemoteEphemeral = ephemeral, RemoteIndex = BinaryPrimitives.ReadUInt32LittleEndian(message.AsSpan(4)) };
    }

    /// <summary>Initiator side of section 5.4.3; on success derives (send, receive) keys per section 5.4.5.</summary>
    public static bool ConsumeResponse(State state, byte[] message, byte[] staticPrivate, byte[] presharedKey, out byte[] sendKey, out byte[] receiveKey)
    {
        sendKey = receiveKey = [];
        var localPublic = PublicKey(staticPrivate);
        if (!Mac(Hash(Encoding.ASCII.GetBytes("mac1----"), localPublic), message[..60]).AsSpan().SequenceEqual(message.AsSpan(60, 16))
            || BinaryPrimitives.ReadUInt32LittleEndian(message.AsSpan(8)) != state.LocalIndex)
        {
            return false;
        }
        var ephemeral = message[12..44];
        var c = Kdf(1, state.ChainKey, ephemeral)[0];
        var h = Hash(state.Hash, ephemeral);
        c = Kdf(1, c, Dh(state.EphemeralPrivate, ephemeral))[0];
        c = Kdf(1, c, Dh(staticPrivate, ephemeral))[0];
        var k = Kdf(3, c, presharedKey);
        c = k[0];
        h = Hash(h, k[1]);
        if (AeadOpen(k[2], 0, message[44..60], h) is null)
        {
            return false;
        }
        state.RemoteIndex = BinaryPrimitives.ReadUInt32LittleEndian(message.AsSpan(4));
        var keys = Kdf(2, c, []);
        sendKey = keys[0];
        receiveKey = keys[1];
        return true;
    }

    /// <summary>Responder's (send, receive) keys after <see cref="CreateResponse"/>.</summary>
    public static (byte[] Send, byte[] Receive) ResponderKeys(State state)
    {
        var keys = Kdf(2, state.ChainKey, []);
        return (keys[1], keys[0]);
    }

    /// <summary>Section 5.4.6: header, payload padded to 16 bytes, tag.</summary>
    public static byte[] Transport(byte[] key, uint receiver, ulong counter, byte[] payload)
    {
        var padded = new byte[(payload.Length + 15) & ~15];
        payload.CopyTo(padded, 0);
        var counterBytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(counterBytes, counter);
        return [4, 0, 0, 0, .. Le32(receiver), .. counterBytes, .. Aead(key, counter, padded, [])];
    }
}
