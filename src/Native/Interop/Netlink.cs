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
