namespace Firezone.Actors.Engine;

/// <summary>What the RFC 6040 section 4.2 table says to do with one (inner, outer) pair.</summary>
public enum EcnVerdict : byte
{
    /// <summary>Forward the inner packet with <see cref="EcnDecapsulation.Result.Inner"/> as its ECN field.</summary>
    Forward = 0,

    /// <summary>A combination marked "(!)" in the table: forward, and the caller may log it.</summary>
    ForwardNotable = 1,

    /// <summary>A combination marked "(!!!)": forward, but it should not happen; the caller counts and logs it (rate-limited).</summary>
    ForwardUnexpected = 2,

    /// <summary>Not-ECT inner with CE outer: the congestion signal cannot be passed on, so the packet is dropped ("(!!!)" as well).</summary>
    Drop = 3,
}

/// <summary>
/// Copy-out: RFC 6040 section 4.2 decapsulation, the full table including the drop case.
/// One 16-entry table indexed by (inner, outer); no branches on the packet path.
/// </summary>
public static class EcnDecapsulation
{
    /// <summary>The resulting inner codepoint and the table's verdict.</summary>
    public readonly record struct Result(Ecn Inner, EcnVerdict Verdict)
    {
        public bool IsDrop => Verdict == EcnVerdict.Drop;
        public bool IsUnexpected => Verdict is EcnVerdict.ForwardUnexpected or EcnVerdict.Drop;
    }

    // RFC 6040 section 4.2, Figure 4 ("New IP in IP Decapsulation Behaviour"). Rows: arriving inner
    // header; columns: arriving outer header. Index = inner * 4 + outer, codepoints as on the wire
    // (Not-ECT 0, ECT(1) 1, ECT(0) 2, CE 3).
    private static readonly Result[] Table =
    [
        // inner Not-ECT: outer Not-ECT, ECT(1) (!!!), ECT(0) (!!!), CE -> drop (!!!)
        new(Ecn.NotEct, EcnVerdict.Forward),
        new(Ecn.NotEct, EcnVerdict.ForwardUnexpected),
        new(Ecn.NotEct, EcnVerdict.ForwardUnexpected),
        new(Ecn.NotEct, EcnVerdict.Drop),
        // inner ECT(1): outer Not-ECT, ECT(1), ECT(0) (!), CE
        new(Ecn.Ect1, EcnVerdict.Forward),
        new(Ecn.Ect1, EcnVerdict.Forward),
        new(Ecn.Ect1, EcnVerdict.ForwardNotable),
        new(Ecn.Ce, EcnVerdict.Forward),
        // inner ECT(0): outer Not-ECT, ECT(1) -> ECT(1), ECT(0), CE
        new(Ecn.Ect0, EcnVerdict.Forward),
        new(Ecn.Ect1, EcnVerdict.Forward),
        new(Ecn.Ect0, EcnVerdict.Forward),
        new(Ecn.Ce, EcnVerdict.Forward),
        // inner CE: outer Not-ECT, ECT(1) (!!!), ECT(0), CE
        new(Ecn.Ce, EcnVerdict.Forward),
        new(Ecn.Ce, EcnVerdict.ForwardUnexpected),
        new(Ecn.Ce, EcnVerdict.Forward),
        new(Ecn.Ce, EcnVerdict.Forward),
    ];

    /// <summary>The RFC 6040 section 4.2 outcome for an arriving inner and outer codepoint.</summary>
    public static Result Decapsulate(Ecn inner, Ecn outer) => Table[((int)inner & 3) << 2 | ((int)outer & 3)];
}
