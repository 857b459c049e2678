using System.Runtime.InteropServices;

namespace Firezone.Actors.Native.Interop;

/// <summary>
/// <c>&lt;stdlib.h&gt;</c> <c>realpath</c> with a null buffer (glibc allocates the result, freed with
/// <c>free</c>), which Tmds.LibC 0.5.0 does not declare.
/// </summary>
internal static partial class RealPath
{
    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint realpath(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    internal static partial void free(nint pointer);
}
