using System.Runtime.InteropServices;

namespace Firezone.Actors.Native;

/// <summary>
/// rmdir(2): removes a directory only when it is empty, and never through a symlink (rmdir does not
/// follow the last component of its path: a symlink there gives ENOTDIR and stays). .NET's
/// Directory.Delete says neither in its contract.
/// </summary>
public static class EmptyDirectory
{
    /// <returns>0 when the directory was removed, otherwise the errno (ENOTEMPTY, ENOTDIR, ENOENT, EBUSY...).</returns>
    public static int TryRemove(string path) =>
        Interop.Link.rmdir(path) == 0 ? 0 : Marshal.GetLastPInvokeError();
}
