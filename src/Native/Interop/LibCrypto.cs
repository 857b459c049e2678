using System.Runtime.InteropServices;

namespace Firezone.Actors.Native.Interop;

/// <summary>
/// The few functions of OpenSSL's libcrypto (<c>&lt;openssl/evp.h&gt;</c>, <c>err.h</c>,
/// <c>crypto.h</c>) that <see cref="OpenSslX25519"/> and <see cref="OpenSslChaCha20Poly1305"/> need,
/// as unmanaged function pointers looked up
/// with <see cref="NativeLibrary"/> rather than declared with [LibraryImport]: the library's file name
/// differs between OpenSSL versions (libcrypto.so.3, libcrypto.so.1.1), and a missing library or
/// function must leave the daemon on BouncyCastle's X25519, not fail a call with
/// DllNotFoundException. Signatures as in OpenSSL 3.0 (and 1.1.1): size_t is nuint, pointers nint.
/// </summary>
internal sealed unsafe class LibCrypto
{
    /// <summary>NID_X25519, the EVP_PKEY type of X25519 keys.</summary>
    internal const int EVP_PKEY_X25519 = 1034;

    /// <summary>EVP_CIPHER_CTX_ctrl commands of AEAD ciphers (evp.h).</summary>
    internal const int EVP_CTRL_AEAD_GET_TAG = 0x10;
    internal const int EVP_CTRL_AEAD_SET_TAG = 0x11;

    internal readonly delegate* unmanaged<int, nint, byte*, nuint, nint> EVP_PKEY_new_raw_private_key;
    internal readonly delegate* unmanaged<int, nint, byte*, nuint, nint> EVP_PKEY_new_raw_public_key;
    internal readonly delegate* unmanaged<nint, byte*, nuint*, int> EVP_PKEY_get_raw_public_key;
    internal readonly delegate* unmanaged<nint, nint, nint> EVP_PKEY_CTX_new;
    internal readonly delegate* unmanaged<nint, int> EVP_PKEY_derive_init;
    internal readonly delegate* unmanaged<nint, nint, int> EVP_PKEY_derive_set_peer;
    internal readonly delegate* unmanaged<nint, byte*, nuint*, int> EVP_PKEY_derive;
    internal readonly delegate* unmanaged<nint, void> EVP_PKEY_CTX_free;
    internal readonly delegate* unmanaged<nint, void> EVP_PKEY_free;
    internal readonly delegate* unmanaged<nuint> ERR_get_error;
    internal readonly delegate* unmanaged<nuint, byte*, nuint, void> ERR_error_string_n;
    internal readonly delegate* unmanaged<void> ERR_clear_error;
    internal readonly delegate* unmanaged<nuint> ERR_peek_error;
    internal readonly delegate* unmanaged<nint> EVP_chacha20_poly1305;
    internal readonly delegate* unmanaged<nint> EVP_CIPHER_CTX_new;
    internal readonly delegate* unmanaged<nint, void> EVP_CIPHER_CTX_free;
    internal readonly delegate* unmanaged<nint, nint, nint, byte*, byte*, int, int> EVP_CipherInit_ex;
    internal readonly delegate* unmanaged<nint, byte*, int*, byte*, int, int> EVP_CipherUpdate;
    internal readonly delegate* unmanaged<nint, byte*, int*, int> EVP_CipherFinal_ex;
    internal readonly delegate* unmanaged<nint, int, int, void*, int> EVP_CIPHER_CTX_ctrl;

    private LibCrypto(nint library, string version)
    {
        EVP_PKEY_new_raw_private_key = (delegate* unmanaged<int, nint, byte*, nuint, nint>)NativeLibrary.GetExport(library, "EVP_PKEY_new_raw_private_key");
        EVP_PKEY_new_raw_public_key = (delegate* unmanaged<int, nint, byte*, nuint, nint>)NativeLibrary.GetExport(library, "EVP_PKEY_new_raw_public_key");
        EVP_PKEY_get_raw_public_key = (delegate* unmanaged<nint, byte*, nuint*, int>)NativeLibrary.GetExport(library, "EVP_PKEY_get_raw_public_key");
        EVP_PKEY_CTX_new = (delegate* unmanaged<nint, nint, nint>)NativeLibrary.GetExport(library, "EVP_PKEY_CTX_new");
        EVP_PKEY_derive_init = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(library, "EVP_PKEY_derive_init");
        EVP_PKEY_derive_set_peer = (delegate* unmanaged<nint, nint, int>)NativeLibrary.GetExport(library, "EVP_PKEY_derive_set_peer");
        EVP_PKEY_derive = (delegate* unmanaged<nint, byte*, nuint*, int>)NativeLibrary.GetExport(library, "EVP_PKEY_derive");
        EVP_PKEY_CTX_free = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(library, "EVP_PKEY_CTX_free");
        EVP_PKEY_free = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(library, "EVP_PKEY_free");
        ERR_get_error = (delegate* unmanaged<nuint>)NativeLibrary.GetExport(library, "ERR_get_error");
        ERR_error_string_n = (delegate* unmanaged<nuint, byte*, nuint, void>)NativeLibrary.GetExport(library, "ERR_error_string_n");
        ERR_clear_error = (delegate* unmanaged<void>)NativeLibrary.GetExport(library, "ERR_clear_error");
        ERR_peek_error = (delegate* unmanaged<nuint>)NativeLibrary.GetExport(library, "ERR_peek_error");
        EVP_chacha20_poly1305 = (delegate* unmanaged<nint>)NativeLibrary.GetExport(library, "EVP_chacha20_poly1305");
        EVP_CIPHER_CTX_new = (delegate* unmanaged<nint>)NativeLibrary.GetExport(library, "EVP_CIPHER_CTX_new");
        EVP_CIPHER_CTX_free = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(library, "EVP_CIPHER_CTX_free");
        EVP_CipherInit_ex = (delegate* unmanaged<nint, nint, nint, byte*, byte*, int, int>)NativeLibrary.GetExport(library, "EVP_CipherInit_ex");
        EVP_CipherUpdate = (delegate* unmanaged<nint, byte*, int*, byte*, int, int>)NativeLibrary.GetExport(library, "EVP_CipherUpdate");
        EVP_CipherFinal_ex = (delegate* unmanaged<nint, byte*, int*, int>)NativeLibrary.GetExport(library, "EVP_CipherFinal_ex");
        EVP_CIPHER_CTX_ctrl = (delegate* unmanaged<nint, int, int, void*, int>)NativeLibrary.GetExport(library, "EVP_CIPHER_CTX_ctrl");
        Version = version;
    }

    /// <summary>OpenSSL_version(OPENSSL_VERSION), e.g. "OpenSSL 3.0.19 27 Jan 2026".</summary>
    internal string Version { get; }

    /// <summary>The library, loaded once for every user (<see cref="TryLoad"/>); null where it is not usable.</summary>
    internal static LibCrypto? Shared { get; } = TryLoad();

    /// <summary>
    /// libcrypto.so.3, else libcrypto.so.1.1 (1.1.1 has every function used here); null when neither
    /// loads or a function is missing (1.1.0 and older lack the raw-key functions).
    /// </summary>
    private static LibCrypto? TryLoad()
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
                return new LibCrypto(library, Marshal.PtrToStringUTF8((nint)version(0)) ?? name); // OPENSSL_VERSION
            }
            catch (EntryPointNotFoundException)
            {
                return null;
            }
        }
        return null;
    }

    /// <summary>The oldest error on this thread's OpenSSL error queue as text (or "no reason given"), and the queue emptied.</summary>
    internal string TakeErrors()
    {
        nuint code = ERR_get_error();
        string reason = "no reason given";
        if (code != 0)
        {
            byte* text = stackalloc byte[256];
            ERR_error_string_n(code, text, 256);
            reason = Marshal.PtrToStringUTF8((nint)text) ?? reason;
        }
        ERR_clear_error();
        return reason;
    }
}
