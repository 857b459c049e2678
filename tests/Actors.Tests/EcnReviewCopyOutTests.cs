using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// ECN review: copy-out (RFC 6040 section 4.2) for all 16 (inner, outer) combinations through the
/// real data path (engine, PeerDataPath, fake TUN and wire): the codepoint written, the drop, the
/// IPv4 checksum, the inner DSCP, and every counter.
/// </summary>
public sealed class EcnReviewCopyOutTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private static readonly Ecn[] All = [Ecn.NotEct, Ecn.Ect1, Ecn.Ect0, Ecn.Ce];

    [Fact]
    public void Every_inner_and_outer_combination_is_written_dropped_and_counted_per_rfc6040()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        Assert.True(Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false))).Created);
        Assert.True(Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b))).Created);
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, Ecn.NotEct, id: 1)); // the handshake
        AwaitWritten(b, 1);

        int written = 1;
        long drops = 0;
        var expected = new List<(ushort Id, Ecn Ecn)>();
        ushort id = 100;
        foreach (Ecn inner in All)
        {
            foreach (Ecn outer in All)
            {
                // The path sets this outer codepoint on the next data datagram.
                Network.RewriteEcn = (data, ecn) =>
                    MessageHeader.Classify(data, out _) == MessageType.TransportData && data.Length > 32 ? outer : ecn;
                a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, inner, id: id));
                var result = EcnDecapsulation.Decapsulate(inner, outer);
                if (result.IsDrop)
                {
                    drops++;
                    long want = drops;
                    AwaitCondition(() => PeerStatusOf(b, a).EcnDrops == want, Wait);
                }
                else
                {
                    written++;
                    AwaitWritten(b, written);
                    expected.Add((id, result.Inner));
                }
                id++;
            }
        }
        Network.RewriteEcn = null;

        var packets = b.Tun.Written.Skip(1).ToList();
        Assert.Equal(expected.Select(e => e.Id), packets.Select(Packets.IdOf));
        Assert.Equal(expected.Select(e => e.Ecn), packets.Select(Packets.EcnOf));
        Assert.All(packets, p => Assert.True(Packets.ChecksumValid(p), "IPv4 header checksum after copy-out (RFC 1624)"));
        Assert.All(packets, p => Assert.Equal(0xB8, p[1] & 0xFC)); // the inner DSCP is never touched

        var status = PeerStatusOf(b, a);
        Assert.Equal(4, status.CeDatagramsReceived); // one CE outer per inner row
        Assert.Equal(2, status.CeMarksPropagated); // ECT(0) and ECT(1) inner with CE outer
        Assert.Equal(1, status.EcnDrops); // Not-ECT inner, CE outer
        Assert.Equal(4, status.EcnUnexpected); // Not-ECT with ECT(1), ECT(0), CE; CE with ECT(1)
        Assert.Equal(16, status.RxPackets); // the handshake's packet and 15 of 16
        StopAndAssertNoLeaks(a, b);
    }
}
