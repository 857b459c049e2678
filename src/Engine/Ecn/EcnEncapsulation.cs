namespace Firezone.Actors.Engine;

/// <summary>
/// Copy-in: the outer ECN codepoint for an inner packet, RFC 6040 section 4.1.
/// </summary>
public static class EcnEncapsulation
{
    /// <summary>
    /// Normal mode copies the inner field, CE included (RFC 6040 section 4.1: "the outer header ...
    /// MUST be a copy of the ECN field of the arriving inner header"). Unlike RFC 3168 full-functionality
    /// mode (which the Linux kernel's WireGuard follows), CE is not turned into ECT(0).
    /// Compatibility mode and Off always emit Not-ECT (RFC 6040 section 4.1, compatibility mode).
    /// Only the ECN bits are returned: the outer DSCP stays 0, the inner DSCP never leaks.
    /// </summary>
    public static Ecn Outer(Ecn inner, EcnMode mode) => mode == EcnMode.Normal ? inner : Ecn.NotEct;
}
