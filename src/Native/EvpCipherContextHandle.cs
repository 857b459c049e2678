using System.Runtime.InteropServices;
using Firezone.Actors.Native.Interop;

namespace Firezone.Actors.Native;

/// <summary>
/// Owns one OpenSSL EVP_CIPHER_CTX with its key. Dispose frees it (OpenSSL clears the key schedule's
/// memory) once no seal or open holds a reference (<see cref="SafeHandle.DangerousAddRef"/>).
/// </summary>
internal sealed class EvpCipherContextHandle : SafeHandle
{
    private readonly LibCrypto _crypto;

    public EvpCipherContextHandle(LibCrypto crypto, nint context) : base(0, ownsHandle: true)
    {
        _crypto = crypto;
        SetHandle(context);
    }

    public override bool IsInvalid => handle == 0;

    protected override unsafe bool ReleaseHandle()
    {
        _crypto.EVP_CIPHER_CTX_free(handle);
        return true;
    }
}
