using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Firezone.Actors.Engine.Crypto;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// The message computations of Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s exactly as whitepaper
/// section 5.4.2 (initiation), 5.4.3 (response) and 5.4.5 (transport keys) write them, with the
/// names used there (Ci, Hi, msg.ephemeral, msg.static, msg.timestamp, msg.empty, τ, κ).
/// Handshake path only; these write the message bodies, mac1/mac2 are added by the caller.
/// </summary>
internal static class Noise
{
    public const string Construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
    public const string Identifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";
    public const string LabelMac1 = "mac1----";
    public const string LabelCookie = "cookie--";

    /// <summary>C0 = HASH(Construction).</summary>
    public static readonly byte[] InitialChainKey = ComputeInitialChainKey();

    /// <summary>H0 = HASH(C0 || Identifier).</summary>
    public static readonly byte[] InitialHash = ComputeInitialHash();

    private static byte[] ComputeInitialChainKey()
    {
        var c = new byte[32];
        Blake2s.Hash(Encoding.ASCII.GetBytes(Construction), c);
        return c;
    }

    private static byte[] ComputeInitialHash()
    {
        var h = new byte[32];
        Blake2s.Hash(ComputeInitialChainKey(), Encoding.ASCII.GetBytes(Identifier), h);
        return h;
    }

    /// <summary>HASH(label || public key): the mac1 key ("mac1----") or the cookie key ("cookie--") of that public key.</summary>
    public static void LabelKey(string label, ReadOnlySpan<byte> publicKey, Span<byte> destination32) =>
        Blake2s.Hash(Encoding.ASCII.GetBytes(label), publicKey, destination32);

    public static void MixHash(Span<byte> hash, ReadOnlySpan<byte> data) => Blake2s.Hash(hash, data, hash);

    public static void MixKey(Span<byte> chainKey, ReadOnlySpan<byte> data) => HmacBlake2s.Kdf1(chainKey, data, chainKey);

    /// <summary>
    /// Section 5.4.2, initiator side. Writes type, sender, ephemeral, static and timestamp into
    /// <paramref name="message"/> (148 bytes; the MACs are left for the caller) and leaves the
    /// handshake in <see cref="HandshakeState.InitiationCreated"/>. False if a DH result is zero.
    /// </summary>
    public static bool CreateInitiation(
        Handshake handshake,
        ReadOnlySpan<byte> localStaticPublic,
        ReadOnlySpan<byte> remoteStatic,
        ReadOnlySpan<byte> precomputedStaticStatic,
        ReadOnlySpan<byte> timestamp,
        uint senderIndex,
        IRandomSource random,
        IX25519 x25519,
        Span<byte> message)
    {
        Span<byte> c = handshake.ChainKey;
        Span<byte> h = handshake.Hash;
        Span<byte> key = stackalloc byte[32];
        Span<byte> shared = stackalloc byte[32];
        try
        {
            InitialChainKey.CopyTo(c);
            InitialHash.CopyTo(h);
            MixHash(h, remoteStatic);

            message[..MessageHeader.InitiationSize].Clear();
            message[0] = (byte)MessageType.Initiation;
            BinaryPrimitives.WriteUInt32LittleEndian(message[MessageLayout.InitiationSender..], senderIndex);

            Curve25519.GeneratePrivateKey(random, handshake.LocalEphemeral);
            Span<byte> ephemeral = message.Slice(MessageLayout.InitiationEphemeral, 32);
            // One key object for the public key and the DH right after it (OpenSSL computes the
            // public key once, when the key is made); disposed here, the bytes stay in the handshake.
            using (var ephemeralKey = x25519.CreatePrivateKey(handshake.LocalEphemeral))
            {
                ephemeralKey.PublicKey(ephemeral);
                MixKey(c, ephemeral);
                MixHash(h, ephemeral);

                if (!ephemeralKey.TrySharedSecret(remoteStatic, shared))
                {
                    return false;
                }
            }
            HmacBlake2s.Kdf2(c, shared, c, key);
            Span<byte> encryptedStatic = message.Slice(MessageLayout.InitiationStatic, 32 + 16);
            NoiseAead.Seal(key, 0, localStaticPublic, h, encryptedStatic);
            MixHash(h, encryptedStatic);

            if (precomputedStaticStatic.IndexOfAnyExcept((byte)0) < 0)
            {
                return false;
            }
            HmacBlake2s.Kdf2(c, precomputedStaticStatic, c, key);
            Span<byte> encryptedTimestamp = message.Slice(MessageLayout.InitiationTimestamp, Tai64N.Size + 16);
            NoiseAead.Seal(key, 0, timestamp[..Tai64N.Size], h, encryptedTimestamp);
            MixHash(h, encryptedTimestamp);

            handshake.State = HandshakeState.InitiationCreated;
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(shared);
        }
    }

    /// <summary>
    /// Section 5.4.2, responder side, first half (no peer state needed): decrypts msg.static with
    /// the responder's static key. Leaves Ci and Hi after msg.static in <paramref name="chainKey"/>
    /// and <paramref name="hash"/> and the initiator's static public key in <paramref name="remoteStatic"/>.
    /// </summary>
    public static bool TryConsumeInitiationStatic(
        ReadOnlySpan<byte> message,
        X25519PrivateKey localStaticPrivate,
        ReadOnlySpan<byte> localStaticPublic,
        Span<byte> chainKey,
        Span<byte> hash,
        Span<byte> remoteStatic)
    {
        if (message.Length != MessageHeader.InitiationSize || message[0] != (byte)MessageType.Initiation)
        {
            return false;
        }
        Span<byte> key = stackalloc byte[32];
        Span<byte> shared = stackalloc byte[32];
        try
        {
            InitialChainKey.CopyTo(chainKey);
            InitialHash.CopyTo(hash);
            MixHash(hash, localStaticPublic);
            ReadOnlySpan<byte> ephemeral = message.Slice(MessageLayout.InitiationEphemeral, 32);
            MixKey(chainKey, ephemeral);
            MixHash(hash, ephemeral);
            if (!localStaticPrivate.TrySharedSecret(ephemeral, shared))
            {
                return false;
            }
            HmacBlake2s.Kdf2(chainKey, shared, chainKey, key);
            ReadOnlySpan<byte> encryptedStatic = message.Slice(MessageLayout.InitiationStatic, 32 + 16);
            if (!NoiseAead.TryOpen(key, 0, encryptedStatic, hash, remoteStatic))
            {
                return false;
            }
            MixHash(hash, encryptedStatic);
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(shared);
        }
    }

    /// <summary>
    /// Section 5.4.2, responder side, second half: decrypts msg.timestamp with the precomputed
    /// DH(Spriv_r, Spub_i). On success <paramref name="chainKey"/> and <paramref name="hash"/> are
    /// advanced past msg.timestamp and <paramref name="timestamp"/> holds the TAI64N.
    /// </summary>
    public static bool TryConsumeInitiationTimestamp(
        ReadOnlySpan<byte> message,
        ReadOnlySpan<byte> precomputedStaticStatic,
        Span<byte> chainKey,
        Span<byte> hash,
        Span<byte> timestamp)
    {
        if (precomputedStaticStatic.IndexOfAnyExcept((byte)0) < 0)
        {
            return false;
        }
        Span<byte> key = stackalloc byte[32];
        try
        {
            HmacBlake2s.Kdf2(chainKey, precomputedStaticStatic, chainKey, key);
            ReadOnlySpan<byte> encryptedTimestamp = message.Slice(MessageLayout.InitiationTimestamp, Tai64N.Size + 16);
            if (!NoiseAead.TryOpen(key, 0, encryptedTimestamp, hash, timestamp))
            {
                return false;
            }
            MixHash(hash, encryptedTimestamp);
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>
    /// Section 5.4.3, responder side: the handshake must be <see cref="HandshakeState.InitiationConsumed"/>.
    /// Writes the 92-byte response body (MACs left zero) and moves to <see cref="HandshakeState.ResponseCreated"/>.
    /// </summary>
    public static bool CreateResponse(
        Handshake handshake,
        ReadOnlySpan<byte> remoteStatic,
        ReadOnlySpan<byte> presharedKey,
        uint senderIndex,
        IRandomSource random,
        IX25519 x25519,
        Span<byte> message)
    {
        Span<byte> c = handshake.ChainKey;
        Span<byte> h = handshake.Hash;
        Span<byte> shared = stackalloc byte[32];
        Span<byte> tau = stackalloc byte[32];
        Span<byte> key = stackalloc byte[32];
        try
        {
            message[..MessageHeader.ResponseSize].Clear();
            message[0] = (byte)MessageType.Response;
            BinaryPrimitives.WriteUInt32LittleEndian(message[MessageLayout.ResponseSender..], senderIndex);
            BinaryPrimitives.WriteUInt32LittleEndian(message[MessageLayout.ResponseReceiver..], handshake.RemoteIndex);

            Curve25519.GeneratePrivateKey(random, handshake.LocalEphemeral);
            Span<byte> ephemeral = message.Slice(MessageLayout.ResponseEphemeral, 32);
            using (var ephemeralKey = x25519.CreatePrivateKey(handshake.LocalEphemeral)) // as in CreateInitiation
            {
                ephemeralKey.PublicKey(ephemeral);
                MixKey(c, ephemeral);
                MixHash(h, ephemeral);

                if (!ephemeralKey.TrySharedSecret(handshake.RemoteEphemeral, shared))
                {
                    return false;
                }
                MixKey(c, shared);
                if (!ephemeralKey.TrySharedSecret(remoteStatic, shared))
                {
                    return false;
                }
                MixKey(c, shared);
            }

            HmacBlake2s.Kdf3(c, presharedKey, c, tau, key);
            MixHash(h, tau);
            Span<byte> empty = message.Slice(MessageLayout.ResponseEmpty, 16);
            NoiseAead.Seal(key, 0, default, h, empty);
            MixHash(h, empty);

            handshake.State = HandshakeState.ResponseCreated;
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(shared);
            CryptographicOperations.ZeroMemory(tau);
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>
    /// Section 5.4.3, initiator side: the handshake must be <see cref="HandshakeState.InitiationCreated"/>.
    /// Works on copies so a forged response leaves the handshake untouched; on success moves to
    /// <see cref="HandshakeState.ResponseConsumed"/>.
    /// </summary>
    public static bool TryConsumeResponse(
        Handshake handshake,
        ReadOnlySpan<byte> message,
        X25519PrivateKey localStaticPrivate,
        IX25519 x25519,
        ReadOnlySpan<byte> presharedKey)
    {
        Span<byte> c = stackalloc byte[32];
        Span<byte> h = stackalloc byte[32];
        Span<byte> shared = stackalloc byte[32];
        Span<byte> tau = stackalloc byte[32];
        Span<byte> key = stackalloc byte[32];
        try
        {
            handshake.ChainKey.CopyTo(c);
            handshake.Hash.CopyTo(h);
            ReadOnlySpan<byte> ephemeral = message.Slice(MessageLayout.ResponseEphemeral, 32);
            MixKey(c, ephemeral);
            MixHash(h, ephemeral);
            if (!x25519.TrySharedSecret(handshake.LocalEphemeral, ephemeral, shared))
            {
                return false;
            }
            MixKey(c, shared);
            if (!localStaticPrivate.TrySharedSecret(ephemeral, shared))
            {
                return false;
            }
            MixKey(c, shared);
            HmacBlake2s.Kdf3(c, presharedKey, c, tau, key);
            MixHash(h, tau);
            ReadOnlySpan<byte> empty = message.Slice(MessageLayout.ResponseEmpty, 16);
            if (!NoiseAead.TryOpen(key, 0, empty, h, default))
            {
                return false;
            }
            MixHash(h, empty);

            c.CopyTo(handshake.ChainKey);
            h.CopyTo(handshake.Hash);
            handshake.RemoteIndex = BinaryPrimitives.ReadUInt32LittleEndian(message[MessageLayout.ResponseSender..]);
            handshake.State = HandshakeState.ResponseConsumed;
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(c);
            CryptographicOperations.ZeroMemory(h);
            CryptographicOperations.ZeroMemory(shared);
            CryptographicOperations.ZeroMemory(tau);
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>
    /// Section 5.4.5: (T_send, T_recv) = Kdf2(C, ε) for the initiator, swapped for the responder.
    /// </summary>
    public static void DeriveTransportKeys(ReadOnlySpan<byte> chainKey, bool isInitiator, Span<byte> sendKey, Span<byte> receiveKey)
    {
        if (isInitiator)
        {
            HmacBlake2s.Kdf2(chainKey, default, sendKey, receiveKey);
        }
        else
        {
            HmacBlake2s.Kdf2(chainKey, default, receiveKey, sendKey);
        }
    }
}
