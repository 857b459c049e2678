using FsCheck.Xunit;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Engine.Tests.Packets;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>
/// Copy-out (RFC 6040 section 4.2) and the IP views on arbitrary bytes, as a decrypted payload may
/// hold (FsCheck): nothing throws, a buffer that is not a valid packet is left alone, and on a valid
/// one only the ECN bits change (and the IPv4 header checksum, which stays valid if it was, RFC 1624).
/// </summary>
public class IpPacketFuzzTests
{
    [Property(MaxTest = 3000)]
    public bool Copy_out_on_any_bytes_never_throws_and_changes_only_the_ecn_bits(byte[] body, byte firstByte, ushort lengthField, byte outer)
    {
        body ??= [];
        byte[] bytes = (byte[])body.Clone();
        if (bytes.Length > 0)
        {
            bytes[0] = (byte)((firstByte & 1) == 0 ? 0x40 | (firstByte >> 4) : 0x60 | (firstByte >> 4));
        }
        if (bytes.Length >= 6 && (lengthField & 1) == 0)
        {
            // Often a length that fits, so the packet parses.
            int fits = (bytes[0] >> 4 == 4 ? bytes.Length : bytes.Length - 40) - lengthField % 8;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(bytes[0] >> 4 == 4 ? 2 : 4), (ushort)Math.Max(0, fits));
        }
        byte[] before = (byte[])bytes.Clone();
        bool ipv4 = bytes.Length > 0 && bytes[0] >> 4 == 4;
        var parse = IpPacket.Validate(bytes, out int totalLength);
        int headerLength = ipv4 ? (bytes[0] & 0x0F) * 4 : 40;
        bool checksumValid = parse == IpParseStatus.Ok && ipv4 && Ipv4Checksum.Compute(bytes.AsSpan(0, headerLength)) == 0;
        var result = IpPacket.ApplyDecapsulation(bytes, (Ecn)(outer & 3), out var status);
        if (status != parse || (status == IpParseStatus.Ok && (totalLength > bytes.Length || totalLength < (ipv4 ? headerLength : 40))))
        {
            return false;
        }
        if (status != IpParseStatus.Ok || result.Verdict == EcnVerdict.Drop)
        {
            return bytes.AsSpan().SequenceEqual(before);
        }
        for (int i = 0; i < bytes.Length; i++)
        {
            bool mayChange = i == 1 || (ipv4 && i is 10 or 11);
            if (!mayChange && bytes[i] != before[i])
            {
                return false;
            }
        }
        byte ecnMask = ipv4 ? (byte)0x03 : (byte)0x30;
        return (bytes[1] & ~ecnMask) == (before[1] & ~ecnMask)
            && IpPacket.TryGetEcn(bytes, out var ecn) == IpParseStatus.Ok && ecn == result.Inner
            && (!checksumValid || Ipv4Checksum.Compute(bytes.AsSpan(0, headerLength)) == 0);
    }
}
