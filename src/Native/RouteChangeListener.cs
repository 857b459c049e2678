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
    private readonly Action _onChange;
    // A route of another interface in the burst being read (the listener's thread only).
    private bool _seen;

    /// <summary>Opens and binds the socket, and starts the thread.</summary>
    /// <param name="ignoredIndex">The interface whose routes are not announced (0: none).</param>
    /// <param name="onChange">Called on the listener's thread after each burst with a route of another interface.</param>
    /// <param name="onFailure">Called on the listener's thread if reading fails for good; the listener then stops.</param>
    /// <exception cref="IOException">The netlink socket could not be opened or bound; the message says why.</exception>
    public RouteChangeListener(int ignoredIndex, Action onChange, Action<Exception> onFailure)
    {
        _ignoredIndex = ignoredIndex;
        _onChange = onChange;
        _listener = new NetlinkGroupListener("route change listener", Netlink.NETLINK_ROUTE, Netlink.RTMGRP_IPV4_ROUTE | Netlink.RTMGRP_IPV6_ROUTE,
            "RTMGRP_IPV4_ROUTE and RTMGRP_IPV6_ROUTE", "route-changes", (data, length) => _seen |= Announces(data, length), OnBurst, onFailure,
            onLostBurst: () => _seen = true);
    }

    private void OnBurst()
    {
        if (_seen)
        {
            _seen = false;
            _onChange();
        }
    }

    /// <summary>Whether the RTM_NEWROUTE or RTM_DELROUTE messages in <paramref name="data"/> name a route that is neither a clone nor through the ignored interface.</summary>
    private bool Announces(byte* data, long length)
    {
        for (long offset = 0; length - offset >= Netlink.NlMsgHdrSize;)
        {
            uint messageLength = *(uint*)(data + offset);
            if (messageLength < Netlink.NlMsgHdrSize || messageLength > length - offset)
            {
                break; // malformed or cut short: nothing more to read in it
            }
            ushort type = *(ushort*)(data + offset + Netlink.NlMsgTypeOffset);
            if ((type is Netlink.RTM_NEWROUTE or Netlink.RTM_DELROUTE) && messageLength >= Netlink.NlMsgHdrSize + Netlink.RtMsgSize
                && IsOtherRoute(data + offset + Netlink.NlMsgHdrSize, messageLength - Netlink.NlMsgHdrSize))
            {
                return true;
            }
            offset += Netlink.Align(messageLength);
        }
        return false;
    }

    /// <summary>The rtmsg and its attributes (<paramref name="length"/> bytes at <paramref name="route"/>): not a clone, and RTA_OIF (when given) is not the ignored interface.</summary>
    private bool IsOtherRoute(byte* route, long length)
    {
        if ((*(uint*)(route + Netlink.RtmFlagsOffset) & Netlink.RTM_F_CLONED) != 0)
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
