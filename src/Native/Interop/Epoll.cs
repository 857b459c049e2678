using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Firezone.Actors.Native.Interop;

/// <summary>
/// <c>&lt;sys/epoll.h&gt;</c>: <c>epoll_wait</c> declared with <c>SetLastError</c>, as <see cref="Poll"/>'s
/// poll, so its EINTR (the runtime signals threads) is told from a failure.
/// </summary>
internal static unsafe partial class Epoll
{
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout);
}
