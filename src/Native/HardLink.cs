using System.Runtime.InteropServices;

namespace Firezone.Actors.Native;

/// <summary>
/// link(2): a second name for a file, which fails (EEXIST) rather than replace one that exists, as
/// rename(2) would. .NET has no API for hard links.
/// </summary>
public static class HardLink
{
    /// <exception cref="IOException">Naming both paths and the reason; <see cref="IOException.HResult"/> is the errno.</exception>
    public static void Create(string existing, string path)
    {
        if (Interop.Link.link(existing, path) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"{path}: cannot link {existing} to it: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }
}
