using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
#pragma warning disable CS8981 // C names from the headers, on purpose

namespace Firezone.Actors.Native.Interop;

/// <summary><c>&lt;time.h&gt;</c>: Tmds.LibC 0.5.0 has no <c>clock_gettime</c>, and .NET reads only CLOCK_MONOTONIC and CLOCK_REALTIME.</summary>
internal static unsafe partial class Clocks
{
    /// <summary>CLOCK_BOOTTIME (Linux 2.6.39): CLOCK_MONOTONIC plus the time the system was suspended.</summary>
    internal const int CLOCK_BOOTTIME = 7;

    [StructLayout(LayoutKind.Sequential)]
    internal struct timespec
    {
        public long tv_sec;
        public long tv_nsec;
    }

    // The vDSO answers it without entering the kernel (tens of nanoseconds), and it never blocks,
    // so the GC transition is not needed (as for .NET's own Stopwatch).
    [LibraryImport("libc")]
    [SuppressGCTransition]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    internal static partial int clock_gettime(int clockId, timespec* time);
}
