using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Firezone.Actors.Native.Interop;

/// <summary>
/// <c>&lt;poll.h&gt;</c>: Tmds.LibC 0.5.0 declares <c>poll</c> without <c>SetLastError</c>, so errno
/// (EINTR when the runtime signals the thread) would be lost; this declaration keeps it.
/// </summary>
internal static unsafe partial class Poll
{
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int poll(pollfd* fds, nuint nfds, int timeout);
}
