namespace Firezone.Actors.Native;

/// <summary>Which address family the UDP socket uses.</summary>
public enum UdpSocketFamily
{
    /// <summary>AF_INET6 with IPV6_V6ONLY off (IPv4 peers appear as ::ffff:a.b.c.d); AF_INET where IPv6 is disabled.</summary>
    DualStack,

    /// <summary>AF_INET only.</summary>
    IPv4Only,
}
