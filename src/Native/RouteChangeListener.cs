using Firezone.Actors.Native.Interop;

namespace Firezone.Actors.Native;

/// <summary>
/// Tells when the routes of this network namespace changed (a route added or removed, by any
/// program, or by the kernel with an address or a link): a NETLINK_ROUTE socket joined to
/// RTMGRP_IPV4_ROUTE and RTMGRP_IPV6_ROUTE, as wireguard-go's route listener
/// (device/sticky_linux.go), read by a dedicated thread that calls <c>onChange</c> once per burst.
/// Routes through <c>ignoredIndex</c> (the tunnel's own interface: wg-quick's and the service's
/// routes of the peers' allowed IPs) and cached clones are skipped without a call: they do not
/// change the way to the peers. Nothing runs while no route changes. A burst the kernel dropped
/// (ENOBUFS) is announced too.
/// </summary>
public sealed unsafe class RouteChangeListener : IDisposable
{
    private readonly NetlinkGroupListener _listener;
    private readonly int _ignoredIndex;

    /// <summary>Opens and binds the socket, and starts the thread.</summary>
    /// <param name="ignoredIndex">The interface whose routes are not announced (0: none).</param>
    /// <param name="onChange">Called on the listener's thread after each burst with a route of another interface.</param>
    /// <param name="onFailure">Called on the listener's thread if reading fails for good; the listener then stops.</param>
    /// <exception cref="IOException">The netlink socket could not be opened or bound; the message says why.</exception>
    public RouteChangeListener(int ignoredIndex, Action onChange, Action<Exception> onFailure)
    {
        _ignoredIndex = ignoredIndex;
        _listener = new NetlinkGroupListener("route change listener", Netlink.NETLINK_ROUTE, Netlink.RTMGRP_IPV4_ROUTE | Netlink.RTMGRP_IPV6_ROUTE,
            "RTMGRP_IPV4_ROUTE and RTMGRP_IPV6_ROUTE", "route-changes", IsOtherRoute, onChange, onFailure, onlyMatched: true);
    }

    /// <summary>An RTM_NEWROUTE or RTM_DELROUTE that is not a clone and whose RTA_OIF (when given) is not the ignored interface.</summary>
    private bool IsOtherRoute(ushort type, byte* route, long length)
    {
        if (type is not (Netlink.RTM_NEWROUTE or Netlink.RTM_DELROUTE) || length < Netlink.RtMsgSize
            || (*(uint*)(route + Netlink.RtmFlagsOffset) & Netlink.RTM_F_CLONED) != 0)
        {
            return false;
        }
        for (long offset = Netlink.RtMsgSize; length - offset >= Netlink.RtAttrHeaderSize;)
        {
            ushort attributeLength = *(ushort*)(route + offset);
            if (attributeLength < Netlink.RtAttrHeaderSize || attributeLength > length - offset)
            {
                break;
            }
            if (*(ushort*)(route + offset + 2) == Netlink.RTA_OIF && attributeLength >= Netlink.RtAttrHeaderSize + 4)
            {
                return _ignoredIndex == 0 || *(int*)(route + offset + Netlink.RtAttrHeaderSize) != _ignoredIndex;
            }
            offset += Netlink.Align(attributeLength);
        }
        return true;
    }

    /// <summary>Stops the thread, which closes the socket; waits for it unless called from a callback (on that thread).</summary>
    public void Dispose() => _listener.Dispose();
}
