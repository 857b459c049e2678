using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// A read whose control data the kernel cut (MSG_CTRUNC in msg_flags: put_cmsg found less room than
/// the cmsg needs and wrote part of it, or none) is dropped and counted in
/// <see cref="ReceiveControlTruncated"/>, never delivered with what is missing guessed:
/// <list type="bullet">
/// <item>without its UDP_GRO cmsg (the kernel writes it first, udp_recvmsg) a GRO read of several
/// datagrams looks like one datagram of their joined bytes: handed on as one, it fails to decrypt
/// at best, and the datagrams in it are lost uncounted;</item>
/// <item>without its IP_TOS / IPV6_TCLASS cmsg (written last, so the first to be cut) a CE mark would
/// be read as Not-ECT and decapsulated away (RFC 6040 section 4.2: an outer Not-ECT leaves the inner
/// header as it was), the congestion signal lost; a drop is the signal RFC 3168 section 5 makes CE
/// stand for, so the sender still slows down;</item>
/// <item>without its IP_PKTINFO / IPV6_PKTINFO cmsg the reply would leave from the kernel's choice of
/// source, which the peer may not accept on a host with several addresses.</item>
/// </list>
/// How many datagrams a cut GRO read held is not known (that is what was cut): the count is of reads.
/// <see cref="MessageBatch.ControlSlot"/> holds every cmsg these sockets ask for with room to spare, so
/// a cut means the kernel writes a cmsg this code does not know of: the tunnel's owner logs the
/// count (rate-limited), so a kernel that does shows up at once rather than as a slow tunnel.
/// </summary>
public sealed unsafe partial class LinuxUdpSocket
{
    /// <summary>True, and counted, when the kernel cut the control data of the read in <paramref name="header"/>.</summary>
    private bool ControlWasCut(msghdr* header)
    {
        if ((header->msg_flags & LibC.MSG_CTRUNC) == 0)
        {
            return false;
        }
        ReceiveControlTruncated++;
        return true;
    }
}
