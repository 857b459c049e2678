using System.Runtime.InteropServices;
using Firezone.Actors.Native.Interop;

namespace Firezone.Actors.Native;

/// <summary>
/// Owns one OpenSSL EVP_PKEY. A DH on another thread holds a reference
/// (<see cref="SafeHandle.DangerousAddRef"/>), so Dispose frees the key (OpenSSL clears its private
/// key's memory) only once no DH uses it.
/// </summary>
internal sealed unsafe class EvpKeyHandle : SafeHandle
{
    private readonly LibCrypto _crypto;

    public EvpKeyHandle(LibCrypto crypto, nint key) : base(0, ownsHandle: true)
    {
        _crypto = crypto;
        SetHandle(key);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        _crypto.EVP_PKEY_free(handle);
        return true;
    }
}
