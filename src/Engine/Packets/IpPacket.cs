
namespace Firezone.Actors.Engine.Packets;

/// <summary>
/// Version-dispatching helpers over a raw IP packet, for code that handles both families
/// (the TUN read path, copy-out). Allocation-free and exception-free.
/// </summary>
public static class IpPacket
{
    /// <summary>The version nibble of the first byte, or 0 for an empty buffer.</summary>
    public static int VersionOf(ReadOnlySpan<byte> bytes) => bytes.IsEmpty ? 0 : bytes[0] >> 4;

    /// <summary>Validates the packet as IPv4 or IPv6, whichever its version nibble says.</summary>
    public static IpParseStatus Validate(Span<byte> bytes, out int totalLength)
    {
        totalLength = 0;
        IpParseStatus status;
        switch (VersionOf(bytes))
        {
            case 4:
                status = Ipv4Packet.TryParse(bytes, out var v4);
                if (status == IpParseStatus.Ok)
                {
                    totalLength = v4.TotalLength;
                }
                return status;
            case 6:
                status = Ipv6Packet.TryParse(bytes, out var v6);
                if (status == IpParseStatus.Ok)
                {
                    totalLength = v6.TotalLength;
                }
                return status;
            default:
                return bytes.IsEmpty ? IpParseStatus.Truncated : IpParseStatus.WrongVersion;
        }
    }

    /// <summary>Reads the ECN field of a valid IPv4 or IPv6 packet.</summary>
    public static IpParseStatus TryGetEcn(Span<byte> bytes, out Ecn ecn)
    {
        ecn = Ecn.NotEct;
        switch (VersionOf(bytes))
        {
            case 4:
            {
                var status = Ipv4Packet.TryParse(bytes, out var v4);
                if (status == IpParseStatus.Ok)
                {
                    ecn = v4.Ecn;
                }
                return status;
            }
            case 6:
            {
                var status = Ipv6Packet.TryParse(bytes, out var v6);
                if (status == IpParseStatus.Ok)
                {
                    ecn = v6.Ecn;
                }
                return status;
            }
            default:
                return bytes.IsEmpty ? IpParseStatus.Truncated : IpParseStatus.WrongVersion;
        }
    }

    /// <summary>Sets the ECN field (IPv4 checksum patched per RFC 1624).</summary>
    public static IpParseStatus TrySetEcn(Span<byte> bytes, Ecn ecn)
    {
        switch (VersionOf(bytes))
        {
            case 4:
            {
                var status = Ipv4Packet.TryParse(bytes, out var v4);
                if (status == IpParseStatus.Ok)
                {
                    v4.SetEcn(ecn);
                }
                return status;
            }
            case 6:
            {
                var status = Ipv6Packet.TryParse(bytes, out var v6);
                if (status == IpParseStatus.Ok)
                {
                    v6.SetEcn(ecn);
                }
                return status;
            }
            default:
                return bytes.IsEmpty ? IpParseStatus.Truncated : IpParseStatus.WrongVersion;
        }
    }

    /// <summary>
    /// Copy-out (RFC 6040 section 4.2): merges the outer codepoint into the inner packet in place.
    /// Returns the table's result; on <see cref="EcnVerdict.Drop"/> the packet is left unchanged and
    /// the caller must drop it. On a malformed packet <paramref name="status"/> is not Ok and nothing changes.
    /// </summary>
    public static EcnDecapsulation.Result ApplyDecapsulation(Span<byte> bytes, Ecn outer, out IpParseStatus status)
    {
        status = TryGetEcn(bytes, out var inner);
        if (status != IpParseStatus.Ok)
        {
            return new EcnDecapsulation.Result(Ecn.NotEct, EcnVerdict.Forward);
        }
        var result = EcnDecapsulation.Decapsulate(inner, outer);
        if (result.Verdict != EcnVerdict.Drop && result.Inner != inner)
        {
            TrySetEcn(bytes, result.Inner);
        }
        return result;
    }
}
