using System.Buffers.Binary;
using Firezone.Actors.Native.Interop;
using Tmds.Linux;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// The datagrams of an RTM_GETROUTE dump as <see cref="RouteTableFingerprint"/> reads them, made
/// by hand: a dump the kernel marks inconsistent (NLM_F_DUMP_INTR: the routes changed while they
/// were read, an IPv6 walk that restarted skips or repeats routes) or ends early (NLMSG_DONE with a
/// negative error) gives no digest, so the burst is announced instead of compared with a digest of
/// neither table.
/// </summary>
public sealed unsafe class RouteTableFingerprintTests
{
    private const ushort NLM_F_MULTI = 2;

    /// <summary>An IPv4 unicast route to 10.1.0.0/24 via interface 2, in a dump datagram.</summary>
    private static byte[] Route(ushort flags)
    {
        var message = new byte[Netlink.NlMsgHdrSize + Netlink.RtMsgSize + 8 + 8];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(Netlink.NlMsgTypeOffset), Netlink.RTM_NEWROUTE);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(Netlink.NlMsgFlagsOffset), flags);
        var route = message.AsSpan(Netlink.NlMsgHdrSize);
        route[Netlink.RtmFamilyOffset] = (byte)LibC.AF_INET;
        route[Netlink.RtmDstLenOffset] = 24;
        route[4] = 254; // table main
        route[Netlink.RtmTypeOffset] = 1; // RTN_UNICAST
        var attributes = route[Netlink.RtMsgSize..];
        BinaryPrimitives.WriteUInt16LittleEndian(attributes, 8);
        BinaryPrimitives.WriteUInt16LittleEndian(attributes[2..], Netlink.RTA_DST);
        attributes[4] = 10;
        attributes[5] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(attributes[8..], 8);
        BinaryPrimitives.WriteUInt16LittleEndian(attributes[10..], Netlink.RTA_OIF);
        BinaryPrimitives.WriteInt32LittleEndian(attributes[12..], 2);
        return message;
    }

    /// <summary>The dump's NLMSG_DONE with its error (0: the dump is whole).</summary>
    private static byte[] Done(int error, ushort flags = NLM_F_MULTI)
    {
        var message = new byte[Netlink.NlMsgHdrSize + 4];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(Netlink.NlMsgTypeOffset), Netlink.NLMSG_DONE);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(Netlink.NlMsgFlagsOffset), flags);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(Netlink.NlMsgHdrSize), error);
        return message;
    }

    private static RouteTableFingerprint.DumpPart Read(byte[] datagram, out ulong digest, out int routes)
    {
        digest = 0;
        routes = 0;
        fixed (byte* data = datagram)
        {
            return RouteTableFingerprint.ReadPart(data, datagram.Length, 0, ref digest, ref routes);
        }
    }

    [Fact]
    public void A_whole_dump_gives_the_digest_of_its_routes()
    {
        Assert.Equal(RouteTableFingerprint.DumpPart.Done, Read([.. Route(NLM_F_MULTI), .. Done(0)], out ulong digest, out int routes));
        Assert.Equal(1, routes);
        Assert.NotEqual(0UL, digest);
        Assert.Equal(RouteTableFingerprint.DumpPart.More, Read(Route(NLM_F_MULTI), out _, out _));
    }

    [Fact]
    public void A_dump_the_kernel_marks_inconsistent_gives_no_digest()
    {
        Assert.Equal(RouteTableFingerprint.DumpPart.Failed, Read(Route(NLM_F_MULTI | Netlink.NLM_F_DUMP_INTR), out _, out _));
        Assert.Equal(RouteTableFingerprint.DumpPart.Failed, Read([.. Route(NLM_F_MULTI), .. Done(0, NLM_F_MULTI | Netlink.NLM_F_DUMP_INTR)], out _, out _));
    }

    [Fact]
    public void A_dump_that_ended_with_an_error_gives_no_digest()
    {
        Assert.Equal(RouteTableFingerprint.DumpPart.Failed, Read([.. Route(NLM_F_MULTI), .. Done(-LibC.EMSGSIZE)], out _, out _));
    }
}
