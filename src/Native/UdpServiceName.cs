using Tmds.Linux;

namespace Firezone.Actors.Native;

/// <summary>
/// A UDP port by its service name ("domain" is 53), looked up as wg(8) reads a port: getaddrinfo
/// with no node and the hints {AI_PASSIVE, SOCK_DGRAM, IPPROTO_UDP} (wireguard-tools config.c,
/// parse_port; parse_endpoint the same with the host), so the sources of nsswitch.conf's services
/// line answer (usually /etc/services), names compare case-sensitively and a name the database
/// gives for TCP only ("http") is none.
/// </summary>
public static class UdpServiceName
{
    /// <summary>NI_MAXSERV, the longest service name getnameinfo writes (with its NUL).</summary>
    private const int MaxNameLength = 32;

    /// <summary>
    /// The port of <paramref name="name"/>. Only a name written as services are named (ASCII
    /// letters, digits, '-', '_' and '.', not digits alone, at most 32 characters) is looked up, so
    /// a mistyped line (a key pasted as the value) is never handed to an NSS source.
    /// </summary>
    public static unsafe bool TryGetPort(string name, out ushort port)
    {
        port = 0;
        if (!IsServiceName(name))
        {
            return false;
        }
        var hints = new Interop.Netdb.addrinfo
        {
            ai_flags = Interop.Netdb.AI_PASSIVE,
            ai_family = LibC.AF_UNSPEC,
            ai_socktype = LibC.SOCK_DGRAM,
            ai_protocol = LibC.IPPROTO_UDP,
        };
        Interop.Netdb.addrinfo* resolved = null;
        if (Interop.Netdb.getaddrinfo(null, name, &hints, &resolved) != 0 || resolved == null)
        {
            return false;
        }
        try
        {
            // sin_port and sin6_port are both at offset 2, in network order; wg takes the first answer.
            bool ok = (resolved->ai_family == LibC.AF_INET && resolved->ai_addrlen == sizeof(sockaddr_in))
                || (resolved->ai_family == LibC.AF_INET6 && resolved->ai_addrlen == sizeof(sockaddr_in6));
            if (ok)
            {
                port = (ushort)((resolved->ai_addr[2] << 8) | resolved->ai_addr[3]);
            }
            return ok;
        }
        finally
        {
            Interop.Netdb.freeaddrinfo(resolved);
        }
    }

    private static bool IsServiceName(string name)
    {
        if (name.Length == 0 || name.Length >= MaxNameLength)
        {
            return false;
        }
        bool allDigits = true;
        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            {
                return false;
            }
            allDigits &= char.IsAsciiDigit(c);
        }
        return !allDigits;
    }
}
