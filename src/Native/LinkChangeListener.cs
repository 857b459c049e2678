using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// Tells when a network interface of this network namespace changed (its MTU, state or name):
/// a NETLINK_ROUTE socket joined to the RTMGRP_LINK group, read by a dedicated thread that blocks
/// until the kernel sends a link message, then calls <c>onChange</c> once for the burst it read.
/// The messages are not parsed, but for one thing the state read afterwards cannot tell: that an
/// interface (<c>downWatchIndex</c>, up when the listener starts) went from up to down, also when it
/// is up again by the time the caller looks (<c>ip link set wg0 down; ip link set wg0 up</c>). The caller looks at the rest
/// itself. This is how wireguard-go follows its TUN device's MTU and state
/// (routineNetlinkListener), and unlike polling it costs nothing while nothing changes.
/// </summary>
public sealed unsafe class LinkChangeListener : IDisposable
{
    private readonly NetlinkGroupListener _listener;
    private readonly Action _onChange;
    private readonly int _downWatchIndex;
    private readonly Action? _onDown;
    // The watched interface's IFF_UP in the last announcement read (up when the listener starts).
    private bool _watchedUp = true;
    // Down announcements of the burst being read (the listener's thread only).
    private int _downs;

    /// <summary>Opens and binds the socket, and starts the thread.</summary>
    /// <param name="onChange">Called on the listener's thread after each burst of link messages (also after a lost burst: ENOBUFS).</param>
    /// <param name="onFailure">Called on the listener's thread if reading fails for good; the listener then stops.</param>
    /// <param name="downWatchIndex">The interface whose down announcements <paramref name="onDown"/> hears of (0: none).</param>
    /// <param name="onDown">Called on the listener's thread, before <paramref name="onChange"/>, once for each time that interface was announced down after it was up.</param>
    /// <exception cref="IOException">The netlink socket could not be opened or bound; the message says why.</exception>
    public LinkChangeListener(Action onChange, Action<Exception> onFailure, int downWatchIndex = 0, Action? onDown = null)
    {
        _onChange = onChange;
        _downWatchIndex = downWatchIndex;
        _onDown = onDown;
        // Messages are looked at only for a down announcement.
        _listener = new NetlinkGroupListener("link change listener", Netlink.NETLINK_ROUTE, Netlink.RTMGRP_LINK, "RTMGRP_LINK", "link-changes",
            onDown is null ? null : CountDown, OnBurst, onFailure);
    }

    private void OnBurst()
    {
        for (; _downs > 0; _downs--)
        {
            _onDown!();
        }
        _onChange();
    }

    /// <summary>
    /// Counts an RTM_NEWLINK that takes the watched interface from up to down (an MTU change of a
    /// down link is announced without IFF_UP too, and is not one).
    /// </summary>
    private bool CountDown(ushort type, byte* body, long bodyLength)
    {
        if (type == Netlink.RTM_NEWLINK && bodyLength >= Netlink.IfInfoMsgSize && *(int*)(body + Netlink.IfiIndexOffset) == _downWatchIndex)
        {
            bool up = (*(uint*)(body + Netlink.IfiFlagsOffset) & (uint)If.IFF_UP) != 0;
            _downs += _watchedUp && !up ? 1 : 0;
            _watchedUp = up;
        }
        return false; // every burst is reported
    }

    /// <summary>Stops the thread, which closes the socket; waits for it unless called from a callback (on that thread).</summary>
    public void Dispose() => _listener.Dispose();
}
