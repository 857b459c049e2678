namespace Firezone.Actors.Engine;

/// <summary>
/// The two-bit ECN field of the IPv4 TOS byte and the IPv6 Traffic Class (RFC 3168 section 5).
/// The numeric values are the on-wire codepoints.
/// </summary>
public enum Ecn : byte
{
    NotEct = 0b00,
    Ect1 = 0b01,
    Ect0 = 0b10,
    Ce = 0b11,
}
