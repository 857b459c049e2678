using System.Runtime.InteropServices;
using Tmds.Linux;

#pragma warning disable CS8981 // C names from the headers, on purpose

namespace Firezone.Actors.Native.Interop;

/// <summary>
/// What <c>&lt;sys/socket.h&gt;</c> offers and Tmds.LibC 0.5.0 lacks: <c>recvmmsg</c>, <c>sendmmsg</c>,
/// an <c>mmsghdr</c> with a field (not a property) so <c>&amp;msgs[i].msg_hdr</c> works, and the
/// control-message length that glibc's <c>CMSG_LEN</c> computes.
/// </summary>
internal static unsafe partial class Socket
{
    /// <summary><c>SOL_UDP</c> (= IPPROTO_UDP), the level of the UDP offload options and cmsgs.</summary>
    internal const int SOL_UDP = 17;

    /// <summary><c>UDP_SEGMENT</c> (linux/udp.h, Linux 4.18): as a sockopt or a cmsg with a <c>__u16</c>
    /// gso_size, one send is cut by the kernel (or the NIC) into datagrams of gso_size bytes, the last shorter.</summary>
    internal const int UDP_SEGMENT = 103;

    /// <summary><c>UDP_GRO</c> (linux/udp.h, Linux 5.0): as a sockopt (int 1) lets the kernel deliver
    /// coalesced datagrams as one; each such read carries a cmsg with the <c>int</c> gso_size.</summary>
    internal const int UDP_GRO = 104;

    /// <summary><c>struct mmsghdr</c> (recvmmsg(2)): one message header plus the byte count the kernel fills in.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct mmsghdr
    {
        public msghdr msg_hdr;
        public uint msg_len;
    }

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int recvmmsg(int sockfd, mmsghdr* msgvec, uint vlen, int flags, void* timeout);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int sendmmsg(int sockfd, mmsghdr* msgvec, uint vlen, int flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint sendmsg(int sockfd, msghdr* msg, int flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint recvmsg(int sockfd, msghdr* msg, int flags);

    /// <summary>
    /// <c>CMSG_LEN(n)</c> as glibc defines it: <c>CMSG_ALIGN(sizeof(cmsghdr)) + n</c>, NOT rounded up.
    /// Tmds.LibC 0.5.0 rounds the whole length up (24 for a 4-byte int instead of 20), and the kernel's
    /// ip_cmsg_send then rejects an <c>IP_TOS</c> cmsg whose payload is not exactly an int with EINVAL.
    /// </summary>
    internal static int CmsgLen(int dataLength) => CmsgAlign(sizeof(cmsghdr)) + dataLength;

    /// <summary><c>CMSG_SPACE(n)</c>: the bytes one control message occupies in the buffer.</summary>
    internal static int CmsgSpace(int dataLength) => CmsgAlign(sizeof(cmsghdr)) + CmsgAlign(dataLength);

    /// <summary><c>CMSG_ALIGN</c>: control messages are aligned to <c>sizeof(size_t)</c>.</summary>
    internal static int CmsgAlign(int length) => (length + sizeof(nuint) - 1) & ~(sizeof(nuint) - 1);

    /// <summary><c>CMSG_DATA</c>: the payload follows the aligned header.</summary>
    internal static byte* CmsgData(cmsghdr* cmsg) => (byte*)cmsg + CmsgAlign(sizeof(cmsghdr));
}
