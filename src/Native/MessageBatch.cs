using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// The native structures of one recvmmsg/sendmmsg call, allocated once per socket and direction on
/// the pinned object heap (no allocation per batch, and no lifetime hazard if the socket is
/// disposed while a call runs): <c>mmsghdr[]</c>, one <c>iovec</c> per message, one
/// <c>sockaddr_in6</c>-sized name slot and one control-message slot per message. The pointers
/// between them (msg_name, msg_iov, msg_control) are linked here once; a call only fills in the
/// per-datagram parts.
/// </summary>
internal sealed unsafe class MessageBatch
{
    /// <summary>sizeof(sockaddr_in6) is 28; slots are 32 apart to keep them aligned.</summary>
    public const int NameSlot = 32;

    /// <summary>
    /// Room per message for the ECN cmsg (CMSG_SPACE(4) = 24), the local address (IP_PKTINFO,
    /// CMSG_SPACE(12) = 32, or IPV6_PKTINFO, CMSG_SPACE(20) = 40) and a UDP_GRO/UDP_SEGMENT one
    /// (another 24): 88 at most, with room to spare. The kernel truncates (MSG_CTRUNC) rather than overflows when
    /// it is short, and the cmsgs it would cut are the ECN ones, so keep the spare (a read cut anyway is
    /// dropped and counted, see LinuxUdpSocket.ControlTruncated.cs).
    /// </summary>
    public const int ControlSlot = 160;

    private readonly Socket.mmsghdr[] _messages;
    private readonly iovec[] _iov;
    private readonly byte[] _names;
    private readonly byte[] _control;

    public MessageBatch(int capacity)
    {
        Capacity = capacity;
        _messages = GC.AllocateArray<Socket.mmsghdr>(capacity, pinned: true);
        _iov = GC.AllocateArray<iovec>(capacity, pinned: true);
        _names = GC.AllocateArray<byte>(capacity * NameSlot, pinned: true);
        _control = GC.AllocateArray<byte>(capacity * ControlSlot, pinned: true);
        Messages = (Socket.mmsghdr*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_messages));
        Iov = (iovec*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_iov));
        Names = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_names));
        Control = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_control));
        for (int i = 0; i < capacity; i++)
        {
            msghdr* header = &Messages[i].msg_hdr;
            header->msg_name = Name(i);
            header->msg_iov = &Iov[i];
            header->msg_iovlen = 1;
            header->msg_control = Control + i * ControlSlot;
        }
    }

    public int Capacity { get; }

    public Socket.mmsghdr* Messages { get; }

    public iovec* Iov { get; }

    public byte* Names { get; }

    public byte* Control { get; }

    public byte* Name(int index) => Names + index * NameSlot;

    public msghdr* Header(int index) => &Messages[index].msg_hdr;
}
