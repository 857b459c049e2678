using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// A 64-bit digest of the routes of this network namespace that can be the way to a peer (those
/// <see cref="RouteChangeListener"/> announces: not the tunnel's own, not local, broadcast, anycast
/// or multicast routes, not IPv6 link-local prefixes, not cached clones), read with an
/// <c>RTM_GETROUTE</c> dump of all families. Lifetimes are left out (<c>RTA_EXPIRES</c>,
/// <c>RTA_CACHEINFO</c>): a route whose only change is its remaining lifetime is the same route.
/// Two equal digests mean the same routes, whatever the announcements in between said: the kernel
/// announces an IPv6 route replaced by an identical one (IPv4's it does not), and a program that
/// re-installs its routes, or a route removed and added back, ends where it began. Hand-written:
/// no library reads a netlink dump into a digest; the hash is FNV-1a with SplitMix64's finaliser,
/// summed over the routes so their order does not count.
/// </summary>
internal static unsafe class RouteTableFingerprint
{
    /// <summary>Beyond this many routes (a router with a full BGP table) no digest is made: reading it at each change would cost more than it saves.</summary>
    internal const int MaxRoutes = 65_536;

    /// <summary>How long the dump may take before it counts as failed.</summary>
    private const int TimeoutMs = 2_000;

    // The kernel fills a dump's datagrams up to 32 KiB (netlink_dump caps max_recvmsg_len there).
    private const int BufferSize = 32_768;

    /// <summary>
    /// Reads the routes and returns their digest, or null when it could not be made: the dump failed
    /// or timed out, or there were more than <see cref="MaxRoutes"/> routes (then <paramref name="tooMany"/>).
    /// </summary>
    /// <param name="ignoredIndex">The tunnel's interface, whose routes do not count (0: none).</param>
    internal static ulong? Take(int ignoredIndex, out bool tooMany)
    {
        tooMany = false;
        int fd = LibC.socket(LibC.AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, Netlink.NETLINK_ROUTE);
        if (fd < 0)
        {
            return null;
        }
        using var socket = new SafeFileDescriptorHandle(fd);
        if (!SendDumpRequest(fd))
        {
            return null;
        }
        byte[] buffer = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
        ulong digest = 0;
        int routes = 0;
        fixed (byte* data = buffer)
        {
            while (true)
            {
                if (DescriptorWait.Wait(fd, LibC.POLLIN, -1, TimeoutMs, out _) != DescriptorWait.Outcome.Ready)
                {
                    return null;
                }
                long read = (long)LibC.recv(fd, data, BufferSize, LibC.MSG_TRUNC);
                if (read < 0)
                {
                    if (LibC.errno == LibC.EINTR)
                    {
                        continue;
                    }
                    return null;
                }
                if (read > BufferSize)
                {
                    return null; // cut short: the digest would miss routes
                }
                switch (ReadPart(data, read, ignoredIndex, ref digest, ref routes))
                {
                    case DumpPart.Done:
                        return digest;
                    case DumpPart.TooMany:
                        tooMany = true;
                        return null;
                    case DumpPart.Failed:
                        return null;
                }
            }
        }
    }

    /// <summary>What a datagram of the dump said: more to read, the end, a failed dump, or too many routes.</summary>
    internal enum DumpPart
    {
        More,
        Done,
        Failed,
        TooMany,
    }

    /// <summary>Adds the routes of one datagram of the dump (<paramref name="read"/> bytes) to <paramref name="digest"/>.</summary>
    internal static DumpPart ReadPart(byte* data, long read, int ignoredIndex, ref ulong digest, ref int routes)
    {
        for (long offset = 0; read - offset >= Netlink.NlMsgHdrSize;)
        {
            uint length = *(uint*)(data + offset);
            if (length < Netlink.NlMsgHdrSize || length > read - offset)
            {
                return DumpPart.Failed;
            }
            ushort type = *(ushort*)(data + offset + Netlink.NlMsgTypeOffset);
            if ((*(ushort*)(data + offset + Netlink.NlMsgFlagsOffset) & Netlink.NLM_F_DUMP_INTR) != 0)
            {
                return DumpPart.Failed; // the routes changed while they were read: a digest of neither table
            }
            if (type == Netlink.NLMSG_DONE)
            {
                // Its int is the dump's error: negative, the dump ended early (EMSGSIZE for a route
                // larger than a datagram, a family's dump failing), and the routes after are missing.
                return length >= Netlink.NlMsgHdrSize + 4 && *(int*)(data + offset + Netlink.NlMsgHdrSize) < 0
                    ? DumpPart.Failed : DumpPart.Done;
            }
            if (type == Netlink.NLMSG_ERROR)
            {
                return DumpPart.Failed;
            }
            byte* body = data + offset + Netlink.NlMsgHdrSize;
            long bodyLength = length - Netlink.NlMsgHdrSize;
            if (RouteChangeListener.IsOtherRoute(type, body, bodyLength, ignoredIndex))
            {
                if (++routes > MaxRoutes)
                {
                    return DumpPart.TooMany;
                }
                digest += Digest(body, bodyLength);
            }
            offset += Netlink.Align(length);
        }
        return DumpPart.More;
    }

    private static bool SendDumpRequest(int fd)
    {
        // struct nlmsghdr followed by struct rtmsg (all zero: every family, every table).
        byte* request = stackalloc byte[Netlink.NlMsgHdrSize + Netlink.RtMsgSize];
        new Span<byte>(request, Netlink.NlMsgHdrSize + Netlink.RtMsgSize).Clear();
        *(uint*)request = (uint)(Netlink.NlMsgHdrSize + Netlink.RtMsgSize);
        *(ushort*)(request + Netlink.NlMsgTypeOffset) = Netlink.RTM_GETROUTE;
        *(ushort*)(request + Netlink.NlMsgFlagsOffset) = Netlink.NLM_F_REQUEST | Netlink.NLM_F_DUMP;
        *(uint*)(request + Netlink.NlMsgSeqOffset) = 1;
        var kernel = new Netlink.sockaddr_nl { nl_family = (ushort)LibC.AF_NETLINK };
        while (true)
        {
            long sent = (long)LibC.sendto(fd, request, (size_t)(Netlink.NlMsgHdrSize + Netlink.RtMsgSize), 0,
                (sockaddr*)&kernel, (uint)sizeof(Netlink.sockaddr_nl));
            if (sent >= 0)
            {
                return true;
            }
            if (LibC.errno != LibC.EINTR)
            {
                return false;
            }
        }
    }

    /// <summary>The digest of one route: its <c>rtmsg</c> and its attributes but the lifetimes.</summary>
    private static ulong Digest(byte* route, long length)
    {
        ulong hash = Fnv(14695981039346656037UL, route, Netlink.RtMsgSize);
        for (long offset = Netlink.RtMsgSize; length - offset >= Netlink.RtAttrHeaderSize;)
        {
            ushort attributeLength = *(ushort*)(route + offset);
            if (attributeLength < Netlink.RtAttrHeaderSize || attributeLength > length - offset)
            {
                break;
            }
            ushort attributeType = *(ushort*)(route + offset + 2);
            if (attributeType is not (Netlink.RTA_CACHEINFO or Netlink.RTA_EXPIRES))
            {
                hash = Fnv(hash, route + offset, attributeLength);
            }
            offset += Netlink.Align(attributeLength);
        }
        // SplitMix64's finaliser, so that summing the routes' digests mixes well.
        hash = (hash ^ (hash >> 30)) * 0xbf58476d1ce4e5b9UL;
        hash = (hash ^ (hash >> 27)) * 0x94d049bb133111ebUL;
        return hash ^ (hash >> 31);
    }

    private static ulong Fnv(ulong hash, byte* data, long length)
    {
        for (long i = 0; i < length; i++)
        {
            hash = (hash ^ data[i]) * 1099511628211UL;
        }
        return hash;
    }
}
