using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Firezone.Actors.Native.Interop;

/// <summary>
/// <c>&lt;sys/uio.h&gt;</c>: readv/writev (Tmds.LibC 0.5.0 has neither). With IFF_VNET_HDR they put the
/// virtio_net_hdr and the packet in separate memory without a copy. errno via Marshal.GetLastPInvokeError.
/// </summary>
internal static unsafe partial class Uio
{
    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint readv(int fd, iovec* iov, int iovcnt);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint writev(int fd, iovec* iov, int iovcnt);
}
