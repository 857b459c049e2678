using Firezone.Actors.Engine.Offload;

namespace Firezone.Actors.Engine.Packets;

/// <summary>The Internet checksum (RFC 1071) and its incremental update (RFC 1624).</summary>
public static class Ipv4Checksum
{
    /// <summary>One's-complement sum of 16-bit big-endian words, folded and complemented (RFC 1071),
    /// by the same routine the offload path uses.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => InternetChecksum.Finish(InternetChecksum.Sum(data));

    /// <summary>
    /// RFC 1624 equation 3: HC' = ~(~HC + ~m + m'), for one 16-bit word changing from m to m'.
    /// Unlike equation 2 of RFC 1141 this never produces the -0 (0xFFFF) ambiguity.
    /// </summary>
    public static ushort Update(ushort checksum, ushort oldWord, ushort newWord)
    {
        uint sum = (uint)(ushort)~checksum + (ushort)~oldWord + newWord;
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }
}
