using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Offload;
using static Firezone.Actors.Engine.Tests.Offload.OffloadPackets;

namespace Firezone.Actors.Engine.Tests.Offload;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>
/// ECN review of <see cref="TcpCoalescer"/>: TCP-level ECN feedback must survive a merge as the
/// IP-level codepoint does. With Accurate ECN (RFC 9768, in Linux since 6.18 with
/// net.ipv4.tcp_ecn=3) the ACE field, a 3-bit count of CE-marked packets received, is carried by
/// AE (bit 0 of TCP header byte 12, RFC 9768 section 3.2.2), CWR and ECE on every segment. The
/// kernel's segmentation copies the head's header to every segment, so segments whose byte 12
/// differs must not be merged, as the kernel's tcp_gro_receive refuses them: it compares the whole
/// tcp_flag_word (data offset, reserved bits with AE, flags, window) but CWR, FIN and PSH.
/// </summary>
public sealed class EcnReviewTcpCoalescerTests
{
    private const int Mss = 1000;
    private readonly PacketBufferPool _pool = new(preallocate: 16);

    private static byte[] WithByte12Low(byte[] packet, bool ipv6, byte low)
    {
        int l4 = ipv6 ? 40 : 20;
        packet[l4 + 12] = (byte)((packet[l4 + 12] & 0xF0) | low);
        FillChecksum(packet, ipv6, 6);
        return packet;
    }

    [Theory]
    [InlineData(false, 0x01)] // AE: ACE = 4 + (CWR, ECE) against ACE = (CWR, ECE)
    [InlineData(true, 0x01)]
    [InlineData(false, 0x02)] // a reserved bit (RFC 9293 section 3.1): the kernel refuses it too
    public void Segments_whose_ace_field_differs_only_in_the_ae_bit_are_not_merged(bool ipv6, byte low)
    {
        // ECE set on both (ACE odd), AE only on the second: ACE 1 then ACE 5, four CE marks apart.
        byte[] first = Tcp(ipv6, 1000, Mss, flags: Ack | Ece, ecn: Ecn.Ect0, id: 7);
        byte[] second = WithByte12Low(Tcp(ipv6, 1000 + Mss, Mss, flags: Ack | Ece, ecn: Ecn.Ect0, id: 8), ipv6, low);
        int[] members = MembersOf(TcpCoalescer.FindRun, _pool, [first, second]);
        // Merged, the kernel would cut the super-packet into two segments that both carry the head's
        // byte 12: the second segment's ACE would read 1 instead of 5, and the local AccECN receiver
        // would miss four CE marks (RFC 9768 section 3.2.2.5).
        Assert.Equal([0], members);
        Assert.Equal(0, _pool.Outstanding);
    }

    [Fact]
    public void Segments_with_the_same_ace_field_still_merge()
    {
        byte[][] packets =
        [
            WithByte12Low(Tcp(false, 1000, Mss, flags: Ack | Ece, id: 7), false, 0x01),
            WithByte12Low(Tcp(false, 1000 + Mss, Mss, flags: Ack | Ece, id: 8), false, 0x01),
            WithByte12Low(Tcp(false, 1000 + 2 * Mss, Mss, flags: Ack | Ece, id: 9), false, 0x01),
        ];
        Assert.Equal([0, 1, 2], MembersOf(TcpCoalescer.FindRun, _pool, packets));
        Assert.Equal(0, _pool.Outstanding);
    }
}
