using System.Runtime.InteropServices;

namespace Firezone.Actors.Native;

/// <summary>
/// realpath(3), as <c>readlink -f</c> gives a path: absolute, every symbolic link followed in every
/// part of it, <c>.</c> and <c>..</c> taken after the links. .NET has no such API:
/// <see cref="File.ResolveLinkTarget(string, bool)"/> follows only the last part, and
/// <see cref="Path.GetFullPath(string)"/> follows none.
/// </summary>
public static class CanonicalPath
{
    /// <summary>The canonical path of an existing file, or null when there is none (a part missing, or a link to a pipe, as /dev/stdin may be).</summary>
    public static string? TryResolve(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        nint resolved = Interop.RealPath.realpath(path, 0);
        if (resolved == 0)
        {
            return null;
        }
        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            Interop.RealPath.free(resolved);
        }
    }
}
