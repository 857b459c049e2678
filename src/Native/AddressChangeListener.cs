using Firezone.Actors.Native.Interop;

namespace Firezone.Actors.Native;

/// <summary>
/// Tells when an address of one interface (<c>interfaceIndex</c>) was added or removed, by any
/// program or by the kernel (which removes an interface's IPv6 addresses when it goes down): a
/// NETLINK_ROUTE socket joined to RTMGRP_IPV4_IFADDR and RTMGRP_IPV6_IFADDR, read by a dedicated
/// thread that calls <c>onChange</c> once per burst that announced an address of that interface.
/// Other interfaces' addresses (a host's DHCP renewals, containers coming and going) are skipped
/// without a call. The caller reads the interface's addresses itself. Nothing runs while no
/// address changes. A burst the kernel dropped (ENOBUFS) is announced too.
/// </summary>
public sealed unsafe class AddressChangeListener : IDisposable
{
    private readonly NetlinkGroupListener _listener;
    private readonly int _interfaceIndex;

    /// <summary>Opens and binds the socket, and starts the thread.</summary>
    /// <param name="interfaceIndex">The interface whose addresses are watched.</param>
    /// <param name="onChange">Called on the listener's thread after each burst that added or removed an address of that interface.</param>
    /// <param name="onFailure">Called on the listener's thread if reading fails for good; the listener then stops.</param>
    /// <exception cref="IOException">The netlink socket could not be opened or bound; the message says why.</exception>
    public AddressChangeListener(int interfaceIndex, Action onChange, Action<Exception> onFailure)
    {
        _interfaceIndex = interfaceIndex;
        _listener = new NetlinkGroupListener("address change listener", Netlink.NETLINK_ROUTE, Netlink.RTMGRP_IPV4_IFADDR | Netlink.RTMGRP_IPV6_IFADDR,
            "RTMGRP_IPV4_IFADDR and RTMGRP_IPV6_IFADDR", "address-changes", IsOfTheInterface, onChange, onFailure, onlyMatched: true);
    }

    /// <summary>An RTM_NEWADDR or RTM_DELADDR of the watched interface.</summary>
    private bool IsOfTheInterface(ushort type, byte* body, long bodyLength) =>
        (type is Netlink.RTM_NEWADDR or Netlink.RTM_DELADDR) && bodyLength >= Netlink.IfAddrMsgSize
        && *(int*)(body + Netlink.IfaIndexOffset) == _interfaceIndex;

    /// <summary>Stops the thread, which closes the socket; waits for it unless called from a callback (on that thread).</summary>
    public void Dispose() => _listener.Dispose();
}
