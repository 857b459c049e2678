using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names from the headers, on purpose

namespace Firezone.Actors.Native.Interop;

/// <summary>What <c>&lt;linux/netlink.h&gt;</c> and <c>&lt;linux/rtnetlink.h&gt;</c> define and Tmds.LibC 0.5.0 lacks.</summary>
internal static class Netlink
{
    /// <summary><c>NETLINK_ROUTE</c>: routing and link messages (rtnetlink(7)).</summary>
    internal const int NETLINK_ROUTE = 0;

    /// <summary><c>RTMGRP_LINK</c>: the multicast group of RTM_NEWLINK/RTM_DELLINK (link state, MTU, name).</summary>
    internal const uint RTMGRP_LINK = 1;

    /// <summary><c>RTMGRP_IPV4_IFADDR</c>: the group of RTM_NEWADDR/RTM_DELADDR of IPv4 addresses.</summary>
    internal const uint RTMGRP_IPV4_IFADDR = 0x10;

    /// <summary><c>RTMGRP_IPV6_IFADDR</c>: the group of RTM_NEWADDR/RTM_DELADDR of IPv6 addresses.</summary>
    internal const uint RTMGRP_IPV6_IFADDR = 0x100;

    /// <summary><c>RTMGRP_IPV4_ROUTE</c>: the group of RTM_NEWROUTE/RTM_DELROUTE of IPv4 routes.</summary>
    internal const uint RTMGRP_IPV4_ROUTE = 0x40;

    /// <summary><c>RTMGRP_IPV6_ROUTE</c>: the group of RTM_NEWROUTE/RTM_DELROUTE of IPv6 routes.</summary>
    internal const uint RTMGRP_IPV6_ROUTE = 0x400;

    /// <summary><c>NETLINK_NETFILTER</c>: nfnetlink, which nftables speaks.</summary>
    internal const int NETLINK_NETFILTER = 12;

    /// <summary>
    /// The bind mask of <c>NFNLGRP_NFTABLES</c> (group 7, so bit 6): every change of the nftables
    /// ruleset (tables, chains, rules, sets) is announced to it; joining needs CAP_NET_ADMIN.
    /// </summary>
    internal const uint NfnlGrpNftablesMask = 1u << (7 - 1);

    /// <summary><c>RTM_NEWLINK</c>: a link was added or changed (its state, MTU, name).</summary>
    internal const ushort RTM_NEWLINK = 16;

    /// <summary><c>RTM_NEWADDR</c>: an address was added to an interface (or changed).</summary>
    internal const ushort RTM_NEWADDR = 20;

    /// <summary><c>RTM_DELADDR</c>: an address was removed from an interface.</summary>
    internal const ushort RTM_DELADDR = 21;

    /// <summary><c>struct ifaddrmsg</c> after the header: family, prefixlen, flags, scope (u8 each), ifa_index (u32); 8 bytes.</summary>
    internal const int IfAddrMsgSize = 8;

    /// <summary>Offset of ifa_index (u32) in <c>struct ifaddrmsg</c>.</summary>
    internal const int IfaIndexOffset = 4;

    /// <summary><c>RTM_NEWROUTE</c>: a route was added (or replaced).</summary>
    internal const ushort RTM_NEWROUTE = 24;

    /// <summary><c>RTM_DELROUTE</c>: a route was removed.</summary>
    internal const ushort RTM_DELROUTE = 25;

    /// <summary><c>struct rtmsg</c> after the header: family, dst_len, src_len, tos, table, protocol, scope, type (u8 each), rtm_flags (u32); 12 bytes.</summary>
    internal const int RtMsgSize = 12;

    /// <summary>Offset of rtm_flags (u32) in <c>struct rtmsg</c>.</summary>
    internal const int RtmFlagsOffset = 8;

    /// <summary><c>RTM_F_CLONED</c>: a cached clone of a route (IPv6 exceptions), not a route of the table.</summary>
    internal const uint RTM_F_CLONED = 0x200;

    /// <summary>Offset of rtm_family (u8) in <c>struct rtmsg</c>.</summary>
    internal const int RtmFamilyOffset = 0;

    /// <summary>Offset of rtm_dst_len (u8) in <c>struct rtmsg</c>.</summary>
    internal const int RtmDstLenOffset = 1;

    /// <summary>Offset of rtm_type (u8) in <c>struct rtmsg</c>.</summary>
    internal const int RtmTypeOffset = 7;

    /// <summary><c>RTN_LOCAL</c>: a route to one of the host's own addresses (table local).</summary>
    internal const byte RTN_LOCAL = 2;

    /// <summary><c>RTN_BROADCAST</c>: an IPv4 broadcast address of the host's (table local).</summary>
    internal const byte RTN_BROADCAST = 3;

    /// <summary><c>RTN_ANYCAST</c>: an IPv6 subnet-router anycast address of the host's (table local).</summary>
    internal const byte RTN_ANYCAST = 4;

    /// <summary><c>RTN_MULTICAST</c>: a multicast route (IPv6's ff00::/8 of each interface, table local).</summary>
    internal const byte RTN_MULTICAST = 5;

    /// <summary><c>RTA_DST</c>: a route's destination prefix (4 or 16 bytes; absent for a default route).</summary>
    internal const ushort RTA_DST = 1;

    /// <summary><c>RTM_GETROUTE</c>: asks for routes (with <see cref="NLM_F_DUMP"/>: all of them).</summary>
    internal const ushort RTM_GETROUTE = 26;

    /// <summary><c>NLM_F_REQUEST</c>: a request to the kernel.</summary>
    internal const ushort NLM_F_REQUEST = 1;

    /// <summary><c>NLM_F_DUMP</c> (<c>NLM_F_ROOT | NLM_F_MATCH</c>): every object of the kind asked for.</summary>
    internal const ushort NLM_F_DUMP = 0x300;

    /// <summary><c>NLM_F_DUMP_INTR</c>: the objects changed while the dump read them; it may be inconsistent.</summary>
    internal const ushort NLM_F_DUMP_INTR = 0x10;

    /// <summary><c>NLMSG_ERROR</c>: the kernel's error (or acknowledgement) message.</summary>
    internal const ushort NLMSG_ERROR = 2;

    /// <summary><c>NLMSG_DONE</c>: the end of a dump.</summary>
    internal const ushort NLMSG_DONE = 3;

    /// <summary><c>RTA_CACHEINFO</c>: a route's <c>struct rta_cacheinfo</c> (use counts and the time left to live).</summary>
    internal const ushort RTA_CACHEINFO = 12;

    /// <summary><c>RTA_EXPIRES</c>: the seconds an IPv6 route has left (routes from router advertisements).</summary>
    internal const ushort RTA_EXPIRES = 23;

    /// <summary><c>struct rtattr</c>: rta_len (u16), rta_type (u16); 4 bytes, the value after it.</summary>
    internal const int RtAttrHeaderSize = 4;

    /// <summary><c>RTA_OIF</c>: a route's output interface index (u32).</summary>
    internal const ushort RTA_OIF = 4;

    /// <summary><c>struct nlmsghdr</c>: nlmsg_len (u32), nlmsg_type (u16), flags, seq, pid; 16 bytes.</summary>
    internal const int NlMsgHdrSize = 16;

    /// <summary>Offset of nlmsg_type (u16) in <c>struct nlmsghdr</c>.</summary>
    internal const int NlMsgTypeOffset = 4;

    /// <summary>Offset of nlmsg_flags (u16) in <c>struct nlmsghdr</c>.</summary>
    internal const int NlMsgFlagsOffset = 6;

    /// <summary>Offset of nlmsg_seq (u32) in <c>struct nlmsghdr</c>.</summary>
    internal const int NlMsgSeqOffset = 8;

    /// <summary><c>struct ifinfomsg</c> after the header: family, pad, type (u16), ifi_index, ifi_flags, ifi_change; 16 bytes.</summary>
    internal const int IfInfoMsgSize = 16;

    /// <summary>Offset of ifi_index (i32) in <c>struct ifinfomsg</c>.</summary>
    internal const int IfiIndexOffset = 4;

    /// <summary>Offset of ifi_flags (u32) in <c>struct ifinfomsg</c>.</summary>
    internal const int IfiFlagsOffset = 8;

    /// <summary><c>NLMSG_ALIGN</c>: messages in a datagram start on 4-byte boundaries.</summary>
    internal static long Align(long length) => (length + 3) & ~3L;

    /// <summary><c>struct sockaddr_nl</c> (netlink(7)).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct sockaddr_nl
    {
        public ushort nl_family;
        public ushort nl_pad;
        public uint nl_pid;
        public uint nl_groups;
    }
}
