using System.Runtime.InteropServices;

namespace Firezone.Actors.Native.Interop;

/// <summary><c>&lt;unistd.h&gt;</c> <c>link</c>, which Tmds.LibC 0.5.0 does not declare.</summary>
internal static partial class Link
{
    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int link(string oldpath, string newpath);
}
