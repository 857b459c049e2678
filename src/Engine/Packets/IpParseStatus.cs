namespace Firezone.Actors.Engine.Packets;

/// <summary>Why a buffer is not a usable IP packet. The packet path reports these instead of throwing.</summary>
public enum IpParseStatus : byte
{
    Ok = 0,
    /// <summary>Shorter than the fixed header (20 bytes IPv4, 40 bytes IPv6), or empty.</summary>
    Truncated,
    /// <summary>The version nibble is neither 4 nor 6, or not the one the view expects.</summary>
    WrongVersion,
    /// <summary>IHL below 5 (an IPv4 header cannot be shorter than 20 bytes).</summary>
    BadHeaderLength,
    /// <summary>
    /// No longer produced: IPv4 options (IHL above 5) are accepted and forwarded as WireGuard does.
    /// Kept so the enum's numeric values stay stable for counters and logs.
    /// </summary>
    HasOptions,
    /// <summary>Total length (IPv4) or payload length (IPv6) disagrees with the buffer.</summary>
    LengthMismatch,
}
