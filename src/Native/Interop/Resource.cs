using System.Runtime.InteropServices;

namespace Firezone.Actors.Native.Interop;

/// <summary><c>&lt;sys/resource.h&gt;</c>: Tmds.LibC 0.5.0 has no <c>getrlimit</c>.</summary>
internal static partial class Resource
{
    /// <summary>RLIMIT_NOFILE (Linux, every architecture .NET runs on).</summary>
    internal const int RLIMIT_NOFILE = 7;

    /// <summary>RLIM_INFINITY.</summary>
    internal const ulong RLIM_INFINITY = ulong.MaxValue;

    [StructLayout(LayoutKind.Sequential)]
    internal struct RLimit
    {
        public ulong rlim_cur;
        public ulong rlim_max;
    }

    // No SetLastError, no marshalling, nothing from Tmds.LibC: called first thing in Main, where a
    // process at a limit of 32 cannot open one more assembly (System.Runtime.InteropServices,
    // netstandard) to run them.
    [LibraryImport("libc")]
    internal static unsafe partial int getrlimit(int resource, RLimit* limit);

    [LibraryImport("libc")]
    internal static unsafe partial nint write(int fd, byte* buffer, nint count);
}
