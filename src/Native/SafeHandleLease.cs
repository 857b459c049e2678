using System.Runtime.InteropServices;

namespace Firezone.Actors.Native;

/// <summary>
/// A reference held on a <see cref="SafeHandle"/> for the native calls of one operation
/// (<see cref="SafeHandle.DangerousAddRef"/> and <see cref="SafeHandle.DangerousRelease"/>), so a
/// Dispose on another thread frees the native object only after them; a disposed handle throws
/// <see cref="ObjectDisposedException"/> at <c>new</c>. Use with <c>using var</c>.
/// </summary>
internal ref struct SafeHandleLease
{
    private readonly SafeHandle _handle;
    private bool _added;

    public SafeHandleLease(SafeHandle handle)
    {
        _handle = handle;
        handle.DangerousAddRef(ref _added);
        Pointer = handle.DangerousGetHandle();
    }

    /// <summary>The native pointer, valid until <see cref="Dispose"/>.</summary>
    public nint Pointer { get; }

    public void Dispose()
    {
        if (_added)
        {
            _added = false;
            _handle.DangerousRelease();
        }
    }
}
