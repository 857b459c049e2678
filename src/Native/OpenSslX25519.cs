using System.Security.Cryptography;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Native.Interop;

namespace Firezone.Actors.Native;

/// <summary>
/// X25519 from the system's OpenSSL libcrypto (by default the library .NET's own cryptography runs
/// on here), through its EVP_PKEY interface (<see cref="LibCrypto"/>). Written by hand because .NET
/// has no X25519 API. BouncyCastle's managed X25519 (<see cref="BouncyCastleX25519"/>) takes about
/// 94 us per DH and 70 us per public key on these machines; OpenSSL's about 37 us for each with a
/// key object (<see cref="CreatePrivateKey"/>: the device's static key, and each ephemeral key for
/// its public key and the DH right after), 77 us for a DH from raw bytes (it computes the public
/// key too). A whole handshake, both sides, takes 0.61 of the time (HandshakeBenchmarks). The DH is
/// constant-time in OpenSSL, and OpenSSL refuses an all-zero result (a low-order public key), which
/// is returned as false like BouncyCastle's, never thrown: crafted public keys cannot make it
/// throw. Only an internal failure (OpenSSL out of memory) throws CryptographicException.
///
/// <see cref="Instance"/> is null when libcrypto cannot be loaded, lacks a function, or fails the
/// RFC 7748 known-answer check at load (for example in FIPS mode, where X25519 is not offered);
/// the host then uses BouncyCastle. No managed allocation per DH; OpenSSL allocates and frees its
/// own small objects.
/// </summary>
public sealed unsafe class OpenSslX25519 : IX25519
{
    private const int KeySize = Curve25519.KeySize;

    private readonly LibCrypto _crypto;

    /// <summary>OpenSSL's X25519, or null where it is not usable (see the class comment).</summary>
    public static OpenSslX25519? Instance { get; } = TryLoad();

    private OpenSslX25519(LibCrypto crypto) => _crypto = crypto;

    public string Name => _crypto.Version;

    public void PublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey32)
    {
        nint key = NewPrivateKey(privateKey);
        try
        {
            RawPublicKey(key, publicKey32);
        }
        finally
        {
            _crypto.EVP_PKEY_free(key);
        }
    }

    public bool TrySharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared32)
    {
        nint key = NewPrivateKey(privateKey);
        try
        {
            return Derive(key, publicKey, shared32);
        }
        finally
        {
            _crypto.EVP_PKEY_free(key);
        }
    }

    public X25519PrivateKey CreatePrivateKey(ReadOnlySpan<byte> privateKey) => new Key(this, new EvpKeyHandle(_crypto, NewPrivateKey(privateKey)));

    private nint NewPrivateKey(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length < KeySize)
        {
            throw new ArgumentException("an X25519 private key is 32 bytes", nameof(privateKey));
        }
        fixed (byte* bytes = privateKey)
        {
            // Clamps as RFC 7748 says, and computes the public key (OpenSSL keeps both).
            nint key = _crypto.EVP_PKEY_new_raw_private_key(LibCrypto.EVP_PKEY_X25519, 0, bytes, KeySize);
            return key != 0 ? key : throw Failure("EVP_PKEY_new_raw_private_key");
        }
    }

    /// <summary>The public key OpenSSL computed when the private key was made.</summary>
    private void RawPublicKey(nint key, Span<byte> publicKey32)
    {
        nuint length = KeySize;
        fixed (byte* output = publicKey32)
        {
            if (publicKey32.Length < KeySize || _crypto.EVP_PKEY_get_raw_public_key(key, output, &length) != 1 || length != KeySize)
            {
                throw Failure("EVP_PKEY_get_raw_public_key");
            }
        }
    }

    private bool Derive(nint privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared32)
    {
        if (publicKey.Length < KeySize || shared32.Length < KeySize)
        {
            throw new ArgumentException("X25519 public keys and shared secrets are 32 bytes");
        }
        nint peer;
        fixed (byte* bytes = publicKey)
        {
            peer = _crypto.EVP_PKEY_new_raw_public_key(LibCrypto.EVP_PKEY_X25519, 0, bytes, KeySize);
        }
        if (peer == 0)
        {
            throw Failure("EVP_PKEY_new_raw_public_key");
        }
        nint context = 0;
        try
        {
            context = _crypto.EVP_PKEY_CTX_new(privateKey, 0);
            if (context == 0)
            {
                throw Failure("EVP_PKEY_CTX_new");
            }
            if (_crypto.EVP_PKEY_derive_init(context) != 1)
            {
                throw Failure("EVP_PKEY_derive_init");
            }
            if (_crypto.EVP_PKEY_derive_set_peer(context, peer) != 1)
            {
                throw Failure("EVP_PKEY_derive_set_peer");
            }
            nuint length = KeySize;
            fixed (byte* output = shared32)
            {
                if (_crypto.EVP_PKEY_derive(context, output, &length) == 1 && length == KeySize)
                {
                    return true;
                }
            }
            // OpenSSL refuses an all-zero result (a low-order public key): leave nothing on its
            // error queue for the next OpenSSL call on this thread.
            _crypto.ERR_clear_error();
            CryptographicOperations.ZeroMemory(shared32[..KeySize]);
            return false;
        }
        finally
        {
            if (context != 0)
            {
                _crypto.EVP_PKEY_CTX_free(context);
            }
            _crypto.EVP_PKEY_free(peer);
        }
    }

    private CryptographicException Failure(string function) =>
        new($"OpenSSL X25519: {function} failed: {_crypto.TakeErrors()}");

    private static OpenSslX25519? TryLoad()
    {
        if (LibCrypto.Shared is not { } crypto)
        {
            return null;
        }
        try
        {
            var candidate = new OpenSslX25519(crypto);
            return candidate.PassesKnownAnswers() ? candidate : null;
        }
        catch (CryptographicException)
        {
            return null; // X25519 not offered (FIPS mode), or broken
        }
    }

    /// <summary>RFC 7748 section 6.1 (Alice and Bob), and the all-zero result of a low-order public key refused.</summary>
    private bool PassesKnownAnswers()
    {
        byte[] alicePrivate = Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        byte[] bobPublic = Convert.FromHexString("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        byte[] alicePublic = Convert.FromHexString("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        byte[] shared = Convert.FromHexString("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        Span<byte> output = stackalloc byte[KeySize];
        PublicKey(alicePrivate, output);
        if (!output.SequenceEqual(alicePublic))
        {
            return false;
        }
        if (!TrySharedSecret(alicePrivate, bobPublic, output) || !output.SequenceEqual(shared))
        {
            return false;
        }
        return !TrySharedSecret(alicePrivate, new byte[KeySize], output) && output.IndexOfAnyExcept((byte)0) < 0;
    }

    /// <summary>A private key kept as OpenSSL's EVP_PKEY (its public key computed once).</summary>
    private sealed class Key(OpenSslX25519 owner, EvpKeyHandle handle) : X25519PrivateKey
    {
        public override void PublicKey(Span<byte> publicKey32)
        {
            using var lease = new SafeHandleLease(handle);
            owner.RawPublicKey(lease.Pointer, publicKey32);
        }

        public override bool TrySharedSecret(ReadOnlySpan<byte> publicKey, Span<byte> shared32)
        {
            using var lease = new SafeHandleLease(handle);
            return owner.Derive(lease.Pointer, publicKey, shared32);
        }

        protected override void Dispose(bool disposing) => handle.Dispose();
    }
}
