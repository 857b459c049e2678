using Firezone.Actors.Native.Interop;
using Tmds.Linux;
using Xunit.Abstractions;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// The C# declarations (ours and the Tmds.LibC ones we rely on) against the C headers: a small C
/// program compiled by gcc prints sizeof/offsetof values and constants, and each must match.
/// </summary>
public sealed unsafe class StructLayoutTests(ITestOutputHelper output)
{
    private const string Program = """
        #define _GNU_SOURCE
        #include <stdio.h>
        #include <stddef.h>
        #include <errno.h>
        #include <sys/socket.h>
        #include <sys/uio.h>
        #include <sys/ioctl.h>
        #include <netinet/in.h>
        #include <net/if.h>
        #include <poll.h>
        #include <netdb.h>
        #include <linux/if_tun.h>
        #include <linux/netlink.h>
        #include <linux/rtnetlink.h>
        #include <linux/netfilter/nfnetlink.h>
        #include <malloc.h>
        #include <time.h>
        #define P(name, value) printf("%s %ld\n", name, (long)(value))
        int main(void) {
            P("sizeof(ifreq)", sizeof(struct ifreq));
            P("ifreq.ifr_name", offsetof(struct ifreq, ifr_name));
            P("ifreq.ifr_flags", offsetof(struct ifreq, ifr_flags));
            P("ifreq.ifr_mtu", offsetof(struct ifreq, ifr_mtu));
            P("ifreq.ifr_ifindex", offsetof(struct ifreq, ifr_ifindex));
            P("sizeof(msghdr)", sizeof(struct msghdr));
            P("msghdr.msg_name", offsetof(struct msghdr, msg_name));
            P("msghdr.msg_namelen", offsetof(struct msghdr, msg_namelen));
            P("msghdr.msg_iov", offsetof(struct msghdr, msg_iov));
            P("msghdr.msg_iovlen", offsetof(struct msghdr, msg_iovlen));
            P("msghdr.msg_control", offsetof(struct msghdr, msg_control));
            P("msghdr.msg_controllen", offsetof(struct msghdr, msg_controllen));
            P("msghdr.msg_flags", offsetof(struct msghdr, msg_flags));
            P("sizeof(mmsghdr)", sizeof(struct mmsghdr));
            P("mmsghdr.msg_hdr", offsetof(struct mmsghdr, msg_hdr));
            P("mmsghdr.msg_len", offsetof(struct mmsghdr, msg_len));
            P("sizeof(cmsghdr)", sizeof(struct cmsghdr));
            P("cmsghdr.cmsg_len", offsetof(struct cmsghdr, cmsg_len));
            P("cmsghdr.cmsg_level", offsetof(struct cmsghdr, cmsg_level));
            P("cmsghdr.cmsg_type", offsetof(struct cmsghdr, cmsg_type));
            P("CMSG_LEN(4)", CMSG_LEN(4));
            P("CMSG_LEN(1)", CMSG_LEN(1));
            P("CMSG_SPACE(4)", CMSG_SPACE(4));
            P("CMSG_SPACE(1)", CMSG_SPACE(1));
            struct cmsghdr c; P("CMSG_DATA offset", (char *)CMSG_DATA(&c) - (char *)&c);
            P("sizeof(sockaddr_in6)", sizeof(struct sockaddr_in6));
            P("sockaddr_in6.sin6_family", offsetof(struct sockaddr_in6, sin6_family));
            P("sockaddr_in6.sin6_port", offsetof(struct sockaddr_in6, sin6_port));
            P("sockaddr_in6.sin6_flowinfo", offsetof(struct sockaddr_in6, sin6_flowinfo));
            P("sockaddr_in6.sin6_addr", offsetof(struct sockaddr_in6, sin6_addr));
            P("sockaddr_in6.sin6_scope_id", offsetof(struct sockaddr_in6, sin6_scope_id));
            P("sizeof(sockaddr_in)", sizeof(struct sockaddr_in));
            P("sockaddr_in.sin_port", offsetof(struct sockaddr_in, sin_port));
            P("sockaddr_in.sin_addr", offsetof(struct sockaddr_in, sin_addr));
            P("sizeof(iovec)", sizeof(struct iovec));
            P("iovec.iov_base", offsetof(struct iovec, iov_base));
            P("iovec.iov_len", offsetof(struct iovec, iov_len));
            P("sizeof(pollfd)", sizeof(struct pollfd));
            P("pollfd.events", offsetof(struct pollfd, events));
            P("pollfd.revents", offsetof(struct pollfd, revents));
            P("TUNSETIFF", TUNSETIFF);
            P("TUNSETPERSIST", TUNSETPERSIST);
            P("TUNGETIFF", (int)TUNGETIFF);
            P("TUNSETOFFLOAD", TUNSETOFFLOAD);
            P("TUNSETVNETHDRSZ", TUNSETVNETHDRSZ);
            P("TUNSETVNETLE", TUNSETVNETLE);
            P("TUNGETVNETLE", (int)TUNGETVNETLE);
            P("IFF_TUN", IFF_TUN);
            P("IFF_NO_PI", IFF_NO_PI);
            P("IFF_MULTI_QUEUE", IFF_MULTI_QUEUE);
            P("IFF_VNET_HDR", IFF_VNET_HDR);
            P("IFF_UP", IFF_UP);
            P("IFNAMSIZ", IFNAMSIZ);
            P("SIOCGIFFLAGS", SIOCGIFFLAGS);
            P("SIOCSIFFLAGS", SIOCSIFFLAGS);
            P("SIOCGIFMTU", SIOCGIFMTU);
            P("SIOCSIFMTU", SIOCSIFMTU);
            P("IP_TOS", IP_TOS);
            P("IP_RECVTOS", IP_RECVTOS);
            P("IPV6_TCLASS", IPV6_TCLASS);
            P("IPV6_RECVTCLASS", IPV6_RECVTCLASS);
            P("IPV6_V6ONLY", IPV6_V6ONLY);
            P("SOL_IP", SOL_IP);
            P("SOL_IPV6", SOL_IPV6);
            P("MSG_DONTWAIT", MSG_DONTWAIT);
            P("MSG_TRUNC", MSG_TRUNC);
            P("SO_RCVBUFFORCE", SO_RCVBUFFORCE);
            P("SO_SNDBUFFORCE", SO_SNDBUFFORCE);
            P("sizeof(sockaddr_nl)", sizeof(struct sockaddr_nl));
            P("sockaddr_nl.nl_family", offsetof(struct sockaddr_nl, nl_family));
            P("sockaddr_nl.nl_pid", offsetof(struct sockaddr_nl, nl_pid));
            P("sockaddr_nl.nl_groups", offsetof(struct sockaddr_nl, nl_groups));
            P("AF_NETLINK", AF_NETLINK);
            P("NETLINK_ROUTE", NETLINK_ROUTE);
            P("RTMGRP_LINK", RTMGRP_LINK);
            P("RTMGRP_IPV4_IFADDR", RTMGRP_IPV4_IFADDR);
            P("RTMGRP_IPV6_IFADDR", RTMGRP_IPV6_IFADDR);
            P("RTM_NEWADDR", RTM_NEWADDR);
            P("RTMGRP_IPV4_ROUTE", RTMGRP_IPV4_ROUTE);
            P("RTMGRP_IPV6_ROUTE", RTMGRP_IPV6_ROUTE);
            P("RTM_NEWROUTE", RTM_NEWROUTE);
            P("RTM_DELROUTE", RTM_DELROUTE);
            P("sizeof(rtmsg)", sizeof(struct rtmsg));
            P("rtmsg.rtm_flags", offsetof(struct rtmsg, rtm_flags));
            P("RTM_F_CLONED", RTM_F_CLONED);
            P("sizeof(rtattr)", sizeof(struct rtattr));
            P("RTA_OIF", RTA_OIF);
            P("RTM_DELADDR", RTM_DELADDR);
            P("sizeof(ifaddrmsg)", sizeof(struct ifaddrmsg));
            P("ifaddrmsg.ifa_index", offsetof(struct ifaddrmsg, ifa_index));
            P("NETLINK_NETFILTER", NETLINK_NETFILTER);
            P("1 << (NFNLGRP_NFTABLES - 1)", 1 << (NFNLGRP_NFTABLES - 1));
            P("RTM_NEWLINK", RTM_NEWLINK);
            P("sizeof(nlmsghdr)", sizeof(struct nlmsghdr));
            P("nlmsghdr.nlmsg_type", offsetof(struct nlmsghdr, nlmsg_type));
            P("RTM_GETROUTE", RTM_GETROUTE);
            P("NLM_F_REQUEST", NLM_F_REQUEST);
            P("NLM_F_DUMP", NLM_F_DUMP);
            P("NLM_F_DUMP_INTR", NLM_F_DUMP_INTR);
            P("M_ARENA_MAX", M_ARENA_MAX);
            P("CLOCK_BOOTTIME", CLOCK_BOOTTIME);
            P("sizeof(timespec)", sizeof(struct timespec));
            P("timespec.tv_nsec", offsetof(struct timespec, tv_nsec));
            P("NLMSG_ERROR", NLMSG_ERROR);
            P("NLMSG_DONE", NLMSG_DONE);
            P("RTA_CACHEINFO", RTA_CACHEINFO);
            P("RTA_EXPIRES", RTA_EXPIRES);
            P("RTA_DST", RTA_DST);
            P("RTN_LOCAL", RTN_LOCAL);
            P("RTN_BROADCAST", RTN_BROADCAST);
            P("RTN_ANYCAST", RTN_ANYCAST);
            P("RTN_MULTICAST", RTN_MULTICAST);
            P("nlmsghdr.nlmsg_flags", offsetof(struct nlmsghdr, nlmsg_flags));
            P("nlmsghdr.nlmsg_seq", offsetof(struct nlmsghdr, nlmsg_seq));
            P("rtmsg.rtm_family", offsetof(struct rtmsg, rtm_family));
            P("rtmsg.rtm_dst_len", offsetof(struct rtmsg, rtm_dst_len));
            P("rtmsg.rtm_type", offsetof(struct rtmsg, rtm_type));
            P("sizeof(ifinfomsg)", sizeof(struct ifinfomsg));
            P("ifinfomsg.ifi_index", offsetof(struct ifinfomsg, ifi_index));
            P("ifinfomsg.ifi_flags", offsetof(struct ifinfomsg, ifi_flags));
            P("NLMSG_ALIGN(17)", NLMSG_ALIGN(17));
            P("ENOBUFS", ENOBUFS);
            P("sizeof(addrinfo)", sizeof(struct addrinfo));
            P("addrinfo.ai_flags", offsetof(struct addrinfo, ai_flags));
            P("addrinfo.ai_family", offsetof(struct addrinfo, ai_family));
            P("addrinfo.ai_socktype", offsetof(struct addrinfo, ai_socktype));
            P("addrinfo.ai_protocol", offsetof(struct addrinfo, ai_protocol));
            P("addrinfo.ai_addrlen", offsetof(struct addrinfo, ai_addrlen));
            P("addrinfo.ai_addr", offsetof(struct addrinfo, ai_addr));
            P("addrinfo.ai_canonname", offsetof(struct addrinfo, ai_canonname));
            P("addrinfo.ai_next", offsetof(struct addrinfo, ai_next));
            P("AI_PASSIVE", AI_PASSIVE);
            P("IPPROTO_UDP", IPPROTO_UDP);
            P("AF_UNSPEC", AF_UNSPEC);
            P("SOCK_DGRAM", SOCK_DGRAM);
            return 0;
        }
        """;

    [Fact]
    public void Declarations_match_the_C_headers()
    {
        Dictionary<string, long> c = CompileAndRun();
        var csharp = new Dictionary<string, long>
        {
            ["sizeof(ifreq)"] = sizeof(If.ifreq),
            ["ifreq.ifr_name"] = Offset<If.ifreq>(p => p->ifr_name),
            ["ifreq.ifr_flags"] = Offset<If.ifreq>(p => &p->ifr_flags),
            ["ifreq.ifr_mtu"] = Offset<If.ifreq>(p => &p->ifr_mtu),
            ["ifreq.ifr_ifindex"] = Offset<If.ifreq>(p => &p->ifr_ifindex),

            // Tmds.LibC's msghdr exposes properties, so its offsets are found by writing each one.
            ["sizeof(msghdr)"] = sizeof(msghdr),
            ["msghdr.msg_name"] = Written<msghdr>(p => p->msg_name = (void*)0x7f),
            ["msghdr.msg_namelen"] = Written<msghdr>(p => p->msg_namelen = 0x7f),
            ["msghdr.msg_iov"] = Written<msghdr>(p => p->msg_iov = (iovec*)0x7f),
            ["msghdr.msg_iovlen"] = Written<msghdr>(p => p->msg_iovlen = 0x7f),
            ["msghdr.msg_control"] = Written<msghdr>(p => p->msg_control = (void*)0x7f),
            ["msghdr.msg_controllen"] = Written<msghdr>(p => p->msg_controllen = 0x7f),
            ["msghdr.msg_flags"] = Written<msghdr>(p => p->msg_flags = 0x7f),
            ["sizeof(mmsghdr)"] = sizeof(Socket.mmsghdr),
            ["mmsghdr.msg_hdr"] = Offset<Socket.mmsghdr>(p => &p->msg_hdr),
            ["mmsghdr.msg_len"] = Offset<Socket.mmsghdr>(p => &p->msg_len),
            ["sizeof(cmsghdr)"] = sizeof(cmsghdr),
            ["cmsghdr.cmsg_len"] = Written<cmsghdr>(p => p->cmsg_len = 0x7f),
            ["cmsghdr.cmsg_level"] = Written<cmsghdr>(p => p->cmsg_level = 0x7f),
            ["cmsghdr.cmsg_type"] = Written<cmsghdr>(p => p->cmsg_type = 0x7f),
            ["CMSG_LEN(4)"] = Socket.CmsgLen(4),
            ["CMSG_LEN(1)"] = Socket.CmsgLen(1),
            ["CMSG_SPACE(4)"] = Socket.CmsgSpace(4),
            ["CMSG_SPACE(1)"] = Socket.CmsgSpace(1),
            ["CMSG_DATA offset"] = Socket.CmsgData((cmsghdr*)0x1000) - (byte*)0x1000,
            ["sizeof(sockaddr_in6)"] = sizeof(sockaddr_in6),
            ["sockaddr_in6.sin6_family"] = Written<sockaddr_in6>(p => p->sin6_family = 0x7f),
            ["sockaddr_in6.sin6_port"] = Written<sockaddr_in6>(p => p->sin6_port = 0x7f),
            ["sockaddr_in6.sin6_flowinfo"] = Written<sockaddr_in6>(p => p->sin6_flowinfo = 0x7f),
            ["sockaddr_in6.sin6_addr"] = Offset<sockaddr_in6>(p => &p->sin6_addr),
            ["sockaddr_in6.sin6_scope_id"] = Written<sockaddr_in6>(p => p->sin6_scope_id = 0x7f),
            ["sizeof(sockaddr_in)"] = sizeof(sockaddr_in),
            ["sockaddr_in.sin_port"] = Written<sockaddr_in>(p => p->sin_port = 0x7f),
            ["sockaddr_in.sin_addr"] = Offset<sockaddr_in>(p => &p->sin_addr),
            ["sizeof(iovec)"] = sizeof(iovec),
            ["iovec.iov_base"] = Written<iovec>(p => p->iov_base = (void*)0x7f),
            ["iovec.iov_len"] = Written<iovec>(p => p->iov_len = 0x7f),
            ["sizeof(pollfd)"] = sizeof(pollfd),
            ["pollfd.events"] = Written<pollfd>(p => p->events = 0x7f),
            ["pollfd.revents"] = Written<pollfd>(p => p->revents = 0x7f),
            ["TUNSETIFF"] = IfTun.TUNSETIFF,
            ["TUNSETPERSIST"] = IfTun.TUNSETPERSIST,
            ["TUNGETIFF"] = IfTun.TUNGETIFF,
            ["TUNSETOFFLOAD"] = IfTun.TUNSETOFFLOAD,
            ["TUNSETVNETHDRSZ"] = IfTun.TUNSETVNETHDRSZ,
            ["TUNSETVNETLE"] = IfTun.TUNSETVNETLE,
            ["TUNGETVNETLE"] = IfTun.TUNGETVNETLE,
            ["IFF_TUN"] = IfTun.IFF_TUN,
            ["IFF_NO_PI"] = IfTun.IFF_NO_PI,
            ["IFF_MULTI_QUEUE"] = IfTun.IFF_MULTI_QUEUE,
            ["IFF_VNET_HDR"] = IfTun.IFF_VNET_HDR,
            ["IFF_UP"] = If.IFF_UP,
            ["IFNAMSIZ"] = If.IFNAMSIZ,
            ["SIOCGIFFLAGS"] = LibC.SIOCGIFFLAGS,
            ["SIOCSIFFLAGS"] = LibC.SIOCSIFFLAGS,
            ["SIOCGIFMTU"] = LibC.SIOCGIFMTU,
            ["SIOCSIFMTU"] = LibC.SIOCSIFMTU,
            ["IP_TOS"] = LibC.IP_TOS,
            ["IP_RECVTOS"] = LibC.IP_RECVTOS,
            ["IPV6_TCLASS"] = LibC.IPV6_TCLASS,
            ["IPV6_RECVTCLASS"] = LibC.IPV6_RECVTCLASS,
            ["IPV6_V6ONLY"] = LibC.IPV6_V6ONLY,
            ["SOL_IP"] = LibC.SOL_IP,
            ["SOL_IPV6"] = LibC.SOL_IPV6,
            ["MSG_DONTWAIT"] = LibC.MSG_DONTWAIT,
            ["MSG_TRUNC"] = LibC.MSG_TRUNC,
            ["SO_RCVBUFFORCE"] = LibC.SO_RCVBUFFORCE,
            ["SO_SNDBUFFORCE"] = LibC.SO_SNDBUFFORCE,
            ["sizeof(sockaddr_nl)"] = sizeof(Netlink.sockaddr_nl),
            ["sockaddr_nl.nl_family"] = Offset<Netlink.sockaddr_nl>(p => &p->nl_family),
            ["sockaddr_nl.nl_pid"] = Offset<Netlink.sockaddr_nl>(p => &p->nl_pid),
            ["sockaddr_nl.nl_groups"] = Offset<Netlink.sockaddr_nl>(p => &p->nl_groups),
            ["AF_NETLINK"] = LibC.AF_NETLINK,
            ["NETLINK_ROUTE"] = Netlink.NETLINK_ROUTE,
            ["RTMGRP_LINK"] = Netlink.RTMGRP_LINK,
            ["RTMGRP_IPV4_IFADDR"] = Netlink.RTMGRP_IPV4_IFADDR,
            ["RTMGRP_IPV6_IFADDR"] = Netlink.RTMGRP_IPV6_IFADDR,
            ["RTM_NEWADDR"] = Netlink.RTM_NEWADDR,
            ["RTMGRP_IPV4_ROUTE"] = Netlink.RTMGRP_IPV4_ROUTE,
            ["RTMGRP_IPV6_ROUTE"] = Netlink.RTMGRP_IPV6_ROUTE,
            ["RTM_NEWROUTE"] = Netlink.RTM_NEWROUTE,
            ["RTM_DELROUTE"] = Netlink.RTM_DELROUTE,
            ["sizeof(rtmsg)"] = Netlink.RtMsgSize,
            ["rtmsg.rtm_flags"] = Netlink.RtmFlagsOffset,
            ["RTM_F_CLONED"] = Netlink.RTM_F_CLONED,
            ["sizeof(rtattr)"] = Netlink.RtAttrHeaderSize,
            ["RTA_OIF"] = Netlink.RTA_OIF,
            ["RTM_DELADDR"] = Netlink.RTM_DELADDR,
            ["sizeof(ifaddrmsg)"] = Netlink.IfAddrMsgSize,
            ["ifaddrmsg.ifa_index"] = Netlink.IfaIndexOffset,
            ["NETLINK_NETFILTER"] = Netlink.NETLINK_NETFILTER,
            ["1 << (NFNLGRP_NFTABLES - 1)"] = Netlink.NfnlGrpNftablesMask,
            ["RTM_NEWLINK"] = Netlink.RTM_NEWLINK,
            ["sizeof(nlmsghdr)"] = Netlink.NlMsgHdrSize,
            ["nlmsghdr.nlmsg_type"] = Netlink.NlMsgTypeOffset,
            ["RTM_GETROUTE"] = Netlink.RTM_GETROUTE,
            ["NLM_F_REQUEST"] = Netlink.NLM_F_REQUEST,
            ["NLM_F_DUMP"] = Netlink.NLM_F_DUMP,
            ["NLM_F_DUMP_INTR"] = Netlink.NLM_F_DUMP_INTR,
            ["M_ARENA_MAX"] = Malloc.M_ARENA_MAX,
            ["CLOCK_BOOTTIME"] = Clocks.CLOCK_BOOTTIME,
            ["sizeof(timespec)"] = sizeof(Clocks.timespec),
            ["timespec.tv_nsec"] = Offset<Clocks.timespec>(p => &p->tv_nsec),
            ["NLMSG_ERROR"] = Netlink.NLMSG_ERROR,
            ["NLMSG_DONE"] = Netlink.NLMSG_DONE,
            ["RTA_CACHEINFO"] = Netlink.RTA_CACHEINFO,
            ["RTA_EXPIRES"] = Netlink.RTA_EXPIRES,
            ["RTA_DST"] = Netlink.RTA_DST,
            ["RTN_LOCAL"] = Netlink.RTN_LOCAL,
            ["RTN_BROADCAST"] = Netlink.RTN_BROADCAST,
            ["RTN_ANYCAST"] = Netlink.RTN_ANYCAST,
            ["RTN_MULTICAST"] = Netlink.RTN_MULTICAST,
            ["nlmsghdr.nlmsg_flags"] = Netlink.NlMsgFlagsOffset,
            ["nlmsghdr.nlmsg_seq"] = Netlink.NlMsgSeqOffset,
            ["rtmsg.rtm_family"] = Netlink.RtmFamilyOffset,
            ["rtmsg.rtm_dst_len"] = Netlink.RtmDstLenOffset,
            ["rtmsg.rtm_type"] = Netlink.RtmTypeOffset,
            ["sizeof(ifinfomsg)"] = Netlink.IfInfoMsgSize,
            ["ifinfomsg.ifi_index"] = Netlink.IfiIndexOffset,
            ["ifinfomsg.ifi_flags"] = Netlink.IfiFlagsOffset,
            ["NLMSG_ALIGN(17)"] = Netlink.Align(17),
            ["ENOBUFS"] = LibC.ENOBUFS,
            ["sizeof(addrinfo)"] = sizeof(Netdb.addrinfo),
            ["addrinfo.ai_flags"] = Offset<Netdb.addrinfo>(p => &p->ai_flags),
            ["addrinfo.ai_family"] = Offset<Netdb.addrinfo>(p => &p->ai_family),
            ["addrinfo.ai_socktype"] = Offset<Netdb.addrinfo>(p => &p->ai_socktype),
            ["addrinfo.ai_protocol"] = Offset<Netdb.addrinfo>(p => &p->ai_protocol),
            ["addrinfo.ai_addrlen"] = Offset<Netdb.addrinfo>(p => &p->ai_addrlen),
            ["addrinfo.ai_addr"] = Offset<Netdb.addrinfo>(p => &p->ai_addr),
            ["addrinfo.ai_canonname"] = Offset<Netdb.addrinfo>(p => &p->ai_canonname),
            ["addrinfo.ai_next"] = Offset<Netdb.addrinfo>(p => &p->ai_next),
            ["AI_PASSIVE"] = Netdb.AI_PASSIVE,
            ["IPPROTO_UDP"] = LibC.IPPROTO_UDP,
            ["AF_UNSPEC"] = LibC.AF_UNSPEC,
            ["SOCK_DGRAM"] = LibC.SOCK_DGRAM,
        };

        var mismatches = new List<string>();
        foreach (var (name, expected) in c)
        {
            if (!csharp.TryGetValue(name, out long actual))
            {
                mismatches.Add($"{name}: printed by the C program but not checked in C#");
            }
            else if (actual != expected)
            {
                mismatches.Add($"{name}: C {expected}, C# {actual}");
            }
        }
        Assert.Equal(csharp.Count, c.Count);
        Assert.True(mismatches.Count == 0, string.Join(Environment.NewLine, mismatches));
    }

    /// <summary>The fact that made us write our own CMSG_LEN: Tmds.LibC 0.5.0 rounds it up.</summary>
    [Fact]
    public void Tmds_LibC_CMSG_LEN_differs_from_glibc_which_is_why_Socket_CmsgLen_exists()
    {
        Assert.Equal(24, LibC.CMSG_LEN(4));
        Assert.Equal(20, Socket.CmsgLen(4));
    }

    private delegate void* FieldAddress<T>(T* p) where T : unmanaged;

    private delegate void Write<T>(T* p) where T : unmanaged;

    private static long Offset<T>(FieldAddress<T> field) where T : unmanaged
    {
        T value = default;
        return (byte*)field(&value) - (byte*)&value;
    }

    /// <summary>Offset of a property-backed field: zero the struct, write the property, find the first non-zero byte.</summary>
    private static long Written<T>(Write<T> write) where T : unmanaged
    {
        T value = default;
        write(&value);
        byte* bytes = (byte*)&value;
        for (int i = 0; i < sizeof(T); i++)
        {
            if (bytes[i] != 0)
            {
                return i;
            }
        }
        throw new InvalidOperationException($"writing the property left {typeof(T).Name} all zero");
    }

    private Dictionary<string, long> CompileAndRun()
    {
        string directory = Directory.CreateTempSubdirectory("fz-layout-").FullName;
        try
        {
            string source = Path.Combine(directory, "layout.c");
            string binary = Path.Combine(directory, "layout");
            File.WriteAllText(source, Program);
            var (compileExit, compileOutput) = Command.Run(TimeSpan.FromSeconds(60), "gcc", "-Wall", "-o", binary, source);
            Assert.True(compileExit == 0, $"gcc failed: {compileOutput}");
            var (exit, text) = Command.Run(TimeSpan.FromSeconds(10), binary);
            Assert.Equal(0, exit);
            output.WriteLine(text);
            var values = new Dictionary<string, long>();
            foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                int space = line.LastIndexOf(' ');
                values[line[..space]] = long.Parse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
            return values;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
