using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// Tells when the routes of this network namespace changed (a route added or removed, by any
/// program, or by the kernel with an address or a link): a NETLINK_ROUTE socket joined to
/// RTMGRP_IPV4_ROUTE and RTMGRP_IPV6_ROUTE (wireguard-go's route listener, device/sticky_linux.go,
/// joins the IPv4 group only), read by a dedicated thread that calls <c>onChange</c> once per burst.
/// Routes through <c>ignoredIndex</c> (the tunnel's own interface: wg-quick's and the service's
/// routes of the peers' allowed IPs) and cached clones are skipped without a call: they do not
/// change the way to the peers. So are the routes that come and go with the host's own addresses
/// and interfaces: local, broadcast, anycast and multicast routes (table local), and IPv6
/// link-local prefixes (the fe80::/64 of each interface that comes up: a container's veth, a TUN
/// device). Each of these made the socket send from the kernel's choice of address until the
/// peer's next datagram: a multi-homed Gateway contacted at its other uplink's address answered
/// from the wrong one after a Docker container started or an address was added, and a Client
/// behind a stateful firewall dropped it. A router advertisement that only refreshes a route's
/// lifetime is not announced by the kernel at all. After a burst the routes are read again
/// (<see cref="RouteTableFingerprint"/>): if they are the ones there were before it, nothing is
/// announced. The kernel announces an IPv6 route replaced by an identical one, which a program
/// that re-installs its routes does at each pass, and a route removed and added back leaves the
/// table as it was. A burst the kernel dropped (ENOBUFS) is checked the same way. Without a digest
/// (the dump failed, or more than <see cref="RouteTableFingerprint.MaxRoutes"/> routes) every burst
/// is announced. Nothing runs while no route changes.
/// </summary>
public sealed unsafe class RouteChangeListener : IDisposable
{
    private readonly NetlinkGroupListener _listener;
    private readonly int _ignoredIndex;
    private readonly Action _onChange;
    // The routes' digest after the last burst (null: none could be made); the listener's thread only, after the constructor.
    private ulong? _routes;
    // Too many routes to digest at each burst: every burst is announced.
    private bool _tooManyRoutes;

    /// <summary>Opens and binds the socket, and starts the thread.</summary>
    /// <param name="ignoredIndex">The interface whose routes are not announced (0: none).</param>
    /// <param name="onChange">Called on the listener's thread after each burst with a route of another interface.</param>
    /// <param name="onFailure">Called on the listener's thread if reading fails for good; the listener then stops.</param>
    /// <exception cref="IOException">The netlink socket could not be opened or bound; the message says why.</exception>
    public RouteChangeListener(int ignoredIndex, Action onChange, Action<Exception> onFailure)
    {
        _ignoredIndex = ignoredIndex;
        _onChange = onChange;
        _routes = RouteTableFingerprint.Take(ignoredIndex, out _tooManyRoutes);
        _listener = new NetlinkGroupListener("route change listener", Netlink.NETLINK_ROUTE, Netlink.RTMGRP_IPV4_ROUTE | Netlink.RTMGRP_IPV6_ROUTE,
            "RTMGRP_IPV4_ROUTE and RTMGRP_IPV6_ROUTE", "route-changes", IsOtherRoute, OnBurst, onFailure, onlyMatched: true);
    }

    /// <summary>A burst with a route that may be the way to a peer: announced unless the routes are those there were before it.</summary>
    private void OnBurst()
    {
        ulong? routes = null;
        if (!_tooManyRoutes)
        {
            routes = RouteTableFingerprint.Take(_ignoredIndex, out _tooManyRoutes);
            if (routes is { } now && _routes is { } before && now == before)
            {
                return;
            }
        }
        _routes = routes;
        _onChange();
    }

    /// <summary>
    /// An RTM_NEWROUTE or RTM_DELROUTE that is not a clone, not a route of the host's own addresses
    /// or of multicast (local, broadcast, anycast, multicast), not to an IPv6 link-local prefix, and
    /// whose RTA_OIF (when given) is not the ignored interface.
    /// </summary>
    internal static bool IsOtherRoute(ushort type, byte* route, long length, int ignoredIndex)
    {
        if (type is not (Netlink.RTM_NEWROUTE or Netlink.RTM_DELROUTE) || length < Netlink.RtMsgSize
            || (*(uint*)(route + Netlink.RtmFlagsOffset) & Netlink.RTM_F_CLONED) != 0
            || route[Netlink.RtmTypeOffset] is Netlink.RTN_LOCAL or Netlink.RTN_BROADCAST or Netlink.RTN_ANYCAST or Netlink.RTN_MULTICAST)
        {
            return false;
        }
        bool linkLocal6 = false;
        bool ignoredInterface = false;
        for (long offset = Netlink.RtMsgSize; length - offset >= Netlink.RtAttrHeaderSize;)
        {
            ushort attributeLength = *(ushort*)(route + offset);
            if (attributeLength < Netlink.RtAttrHeaderSize || attributeLength > length - offset)
            {
                break;
            }
            ushort attributeType = *(ushort*)(route + offset + 2);
            byte* value = route + offset + Netlink.RtAttrHeaderSize;
            if (attributeType == Netlink.RTA_OIF && attributeLength >= Netlink.RtAttrHeaderSize + 4)
            {
                ignoredInterface = ignoredIndex != 0 && *(int*)value == ignoredIndex;
            }
            else if (attributeType == Netlink.RTA_DST && attributeLength >= Netlink.RtAttrHeaderSize + 16
                && route[Netlink.RtmFamilyOffset] == LibC.AF_INET6 && route[Netlink.RtmDstLenOffset] >= 10)
            {
                // Within fe80::/10 (the prefix is at least that long): only link-local addresses.
                linkLocal6 = value[0] == 0xfe && (value[1] & 0xc0) == 0x80;
            }
            offset += Netlink.Align(attributeLength);
        }
        return !ignoredInterface && !linkLocal6;
    }

    private bool IsOtherRoute(ushort type, byte* route, long length) => IsOtherRoute(type, route, length, _ignoredIndex);

    /// <summary>Stops the thread, which closes the socket; waits for it unless called from a callback (on that thread).</summary>
    public void Dispose() => _listener.Dispose();
}
