namespace Firezone.Actors.Engine;

/// <summary>How a peer carries ECN across the tunnel (chosen per peer).</summary>
public enum EcnMode : byte
{
    /// <summary>RFC 6040 section 4.1 normal mode: outer = inner on encapsulation, full section 4.2 table on decapsulation.</summary>
    Normal = 0,

    /// <summary>
    /// RFC 6040 section 4.1 compatibility mode: the outer header is always Not-ECT (for paths that
    /// mishandle ECN). Decapsulation still follows section 4.2, which then never changes the inner packet.
    /// </summary>
    Compatibility = 1,

    /// <summary>ECN is not carried at all: outer Not-ECT, the inner packet is written unchanged (what wireguard-go does).</summary>
    Off = 2,
}
