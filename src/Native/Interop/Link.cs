using System.Runtime.InteropServices;

namespace Firezone.Actors.Native.Interop;

/// <summary>
/// <c>&lt;unistd.h&gt;</c> <c>link</c>, which Tmds.LibC 0.5.0 does not declare, and <c>rmdir</c>,
/// declared here with a string path (Tmds.LibC's takes a byte pointer).
/// </summary>
internal static partial class Link
{
    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int link(string oldpath, string newpath);

    [LibraryImport("libc", EntryPoint = "rmdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int rmdir(string pathname);
}
