using System.Runtime.InteropServices;

namespace Firezone.Actors.Native.Interop;

/// <summary><c>&lt;malloc.h&gt;</c> (glibc): Tmds.LibC 0.5.0 has no <c>mallopt</c>.</summary>
internal static partial class Malloc
{
    /// <summary>M_ARENA_MAX.</summary>
    internal const int M_ARENA_MAX = -8;

    [LibraryImport("libc")]
    internal static partial int mallopt(int parameter, int value);
}
