using System.Runtime.InteropServices;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// Drops a capability from the calling thread's effective set with capset(2). Linux keeps
/// capabilities per thread and glibc's capset wrapper is the bare system call, so only this thread
/// loses it; the test runs it on a thread of its own that ends afterwards.
/// </summary>
internal static unsafe partial class ThreadCapabilities
{
    public const int CAP_NET_ADMIN = 12;
    private const uint _LINUX_CAPABILITY_VERSION_3 = 0x20080522;

    [StructLayout(LayoutKind.Sequential)]
    private struct CapHeader
    {
        public uint Version;
        public int Pid;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapData
    {
        public uint Effective;
        public uint Permitted;
        public uint Inheritable;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int capget(CapHeader* header, CapData* data);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int capset(CapHeader* header, CapData* data);

    public static void DropEffective(int capability)
    {
        var header = new CapHeader { Version = _LINUX_CAPABILITY_VERSION_3, Pid = 0 };
        CapData* data = stackalloc CapData[2];
        if (capget(&header, data) < 0)
        {
            throw new IOException($"capget: errno {Marshal.GetLastPInvokeError()}");
        }
        data[capability / 32].Effective &= ~(1u << (capability % 32));
        if (capset(&header, data) < 0)
        {
            throw new IOException($"capset: errno {Marshal.GetLastPInvokeError()}");
        }
    }
}
