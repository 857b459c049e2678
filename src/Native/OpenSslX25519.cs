using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Firezone.Actors.Engine.Crypto;

namespace Firezone.Actors.Native;

/// <summary>
/// X25519 from the system's OpenSSL libcrypto (the library .NET's own cryptography runs on here),
/// through its EVP_PKEY interface. Written by hand because .NET has no X25519 API; BouncyCastle's
/// managed X25519 (<see cref="BouncyCastleX25519"/>) takes about 140 us per DH and 110 us per
/// public key on these machines, OpenSSL's about 75 and 38 us, and 37 us per DH with a key made
/// once (<see cref="CreatePrivateKey"/>, the device's static key): a responder's four X25519 go from
/// about 530 to 225 us. The DH is constant-time in OpenSSL, and OpenSSL refuses an all-zero result
/// (a low-order public key) as the whitepaper asks.
///
/// <see cref="Instance"/> is null when libcrypto (3.x, or 1.1.1) cannot be loaded, lacks the
/// functions, or fails the RFC 7748 known-answer check at load; the host then uses BouncyCastle.
/// No managed allocation per call; each call allocates and frees OpenSSL's own small objects.
/// </summary>
public sealed unsafe class OpenSslX25519 : IX25519
{
    private const int EVP_PKEY_X25519 = 1034; // NID_X25519
    private const int KeySize = Curve25519.KeySize;

    private readonly delegate* unmanaged<int, nint, byte*, nuint, nint> _newRawPrivateKey;
    private readonly delegate* unmanaged<int, nint, byte*, nuint, nint> _newRawPublicKey;
    private readonly delegate* unmanaged<nint, byte*, nuint*, int> _getRawPublicKey;
    private readonly delegate* unmanaged<nint, nint, nint> _ctxNew;
    private readonly delegate* unmanaged<nint, int> _deriveInit;
    private readonly delegate* unmanaged<nint, nint, int> _deriveSetPeer;
    private readonly delegate* unmanaged<nint, byte*, nuint*, int> _derive;
    private readonly delegate* unmanaged<nint, void> _ctxFree;
    private readonly delegate* unmanaged<nint, void> _pkeyFree;
    private readonly delegate* unmanaged<void> _clearError;

    /// <summary>OpenSSL's X25519, or null where it is not usable (see the class comment).</summary>
    public static OpenSslX25519? Instance { get; } = TryLoad();

    private OpenSslX25519(nint library, string version)
    {
        _newRawPrivateKey = (delegate* unmanaged<int, nint, byte*, nuint, nint>)NativeLibrary.GetExport(library, "EVP_PKEY_new_raw_private_key");
        _newRawPublicKey = (delegate* unmanaged<int, nint, byte*, nuint, nint>)NativeLibrary.GetExport(library, "EVP_PKEY_new_raw_public_key");
        _getRawPublicKey = (delegate* unmanaged<nint, byte*, nuint*, int>)NativeLibrary.GetExport(library, "EVP_PKEY_get_raw_public_key");
        _ctxNew = (delegate* unmanaged<nint, nint, nint>)NativeLibrary.GetExport(library, "EVP_PKEY_CTX_new");
        _deriveInit = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(library, "EVP_PKEY_derive_init");
        _deriveSetPeer = (delegate* unmanaged<nint, nint, int>)NativeLibrary.GetExport(library, "EVP_PKEY_derive_set_peer");
        _derive = (delegate* unmanaged<nint, byte*, nuint*, int>)NativeLibrary.GetExport(library, "EVP_PKEY_derive");
        _ctxFree = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(library, "EVP_PKEY_CTX_free");
        _pkeyFree = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(library, "EVP_PKEY_free");
        _clearError = (delegate* unmanaged<void>)NativeLibrary.GetExport(library, "ERR_clear_error");
        Name = version;
    }

    public string Name { get; }

    public void PublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey32)
    {
        nint key = NewPrivateKey(privateKey);
        try
        {
            RawPublicKey(key, publicKey32);
        }
        finally
        {
            _pkeyFree(key);
        }
    }

    /// <summary>The public key OpenSSL computed when the private key was made.</summary>
    private void RawPublicKey(nint key, Span<byte> publicKey32)
    {
        nuint length = KeySize;
        fixed (byte* output = publicKey32)
        {
            if (publicKey32.Length < KeySize || _getRawPublicKey(key, output, &length) != 1 || length != KeySize)
            {
                throw Failure("EVP_PKEY_get_raw_public_key");
            }
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
            _pkeyFree(key);
        }
    }

    public X25519PrivateKey CreatePrivateKey(ReadOnlySpan<byte> privateKey) => new Key(this, NewPrivateKey(privateKey));

    private nint NewPrivateKey(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length < KeySize)
        {
            throw new ArgumentException("an X25519 private key is 32 bytes", nameof(privateKey));
        }
        fixed (byte* bytes = privateKey)
        {
            // Clamps as RFC 7748 says, and computes the public key (OpenSSL keeps both).
            nint key = _newRawPrivateKey(EVP_PKEY_X25519, 0, bytes, KeySize);
            return key != 0 ? key : throw Failure("EVP_PKEY_new_raw_private_key");
        }
    }

    private bool Derive(nint privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared32)
    {
        if (publicKey.Length < KeySize || shared32.Length < KeySize)
        {
            throw new ArgumentException("X25519 public keys and shared secrets are 32 bytes");
        }
        nint peer, context = 0;
        fixed (byte* bytes = publicKey)
        {
            peer = _newRawPublicKey(EVP_PKEY_X25519, 0, bytes, KeySize);
        }
        if (peer == 0)
        {
            throw Failure("EVP_PKEY_new_raw_public_key");
        }
        try
        {
            context = _ctxNew(privateKey, 0);
            if (context == 0 || _deriveInit(context) != 1 || _deriveSetPeer(context, peer) != 1)
            {
                throw Failure("EVP_PKEY_derive_init");
            }
            nuint length = KeySize;
            fixed (byte* output = shared32)
            {
                if (_derive(context, output, &length) == 1 && length == KeySize)
                {
                    return true;
                }
            }
            // OpenSSL refuses an all-zero result (a low-order public key): leave nothing on its
            // error queue for the next OpenSSL call on this thread (.NET's own cryptography).
            _clearError();
            CryptographicOperations.ZeroMemory(shared32[..KeySize]);
            return false;
        }
        finally
        {
            if (context != 0)
            {
                _ctxFree(context);
            }
            _pkeyFree(peer);
        }
    }

    private CryptographicException Failure(string function)
    {
        _clearError();
        return new CryptographicException($"OpenSSL X25519: {function} failed");
    }

    private static OpenSslX25519? TryLoad()
    {
        foreach (string name in new[] { "libcrypto.so.3", "libcrypto.so.1.1" })
        {
            if (!NativeLibrary.TryLoad(name, out nint library))
            {
                continue;
            }
            try
            {
                var version = (delegate* unmanaged<int, byte*>)NativeLibrary.GetExport(library, "OpenSSL_version");
                string text = Marshal.PtrToStringUTF8((nint)version(0)) ?? name; // OPENSSL_VERSION
                var candidate = new OpenSslX25519(library, text);
                return candidate.PassesKnownAnswers() ? candidate : null;
            }
            catch (Exception e) when (e is EntryPointNotFoundException or CryptographicException)
            {
                return null;
            }
        }
        return null;
    }

    /// <summary>RFC 7748 section 6.1 (Alice and Bob), and a low-order public key refused.</summary>
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
    private sealed class Key(OpenSslX25519 owner, nint key) : X25519PrivateKey
    {
        private readonly EvpKeyHandle _handle = new(owner, key);

        public override void PublicKey(Span<byte> publicKey32)
        {
            bool added = false;
            try
            {
                _handle.DangerousAddRef(ref added);
                owner.RawPublicKey(_handle.DangerousGetHandle(), publicKey32);
            }
            finally
            {
                if (added)
                {
                    _handle.DangerousRelease();
                }
            }
        }

        public override bool TrySharedSecret(ReadOnlySpan<byte> publicKey, Span<byte> shared32)
        {
            bool added = false;
            try
            {
                _handle.DangerousAddRef(ref added);
                return owner.Derive(_handle.DangerousGetHandle(), publicKey, shared32);
            }
            finally
            {
                if (added)
                {
                    _handle.DangerousRelease();
                }
            }
        }

        protected override void Dispose(bool disposing) => _handle.Dispose();
    }

    /// <summary>Frees the EVP_PKEY (OpenSSL clears the private key's memory) once no DH uses it.</summary>
    private sealed class EvpKeyHandle : SafeHandle
    {
        private readonly OpenSslX25519 _owner;

        public EvpKeyHandle(OpenSslX25519 owner, nint key) : base(0, ownsHandle: true)
        {
            _owner = owner;
            SetHandle(key);
        }

        public override bool IsInvalid => handle == 0;

        protected override bool ReleaseHandle()
        {
            _owner._pkeyFree(handle);
            return true;
        }
    }
}
