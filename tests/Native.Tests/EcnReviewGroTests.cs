using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// ECN review: real kernel GRO (not a GSO send handed over whole, which has one IP header anyway)
/// over datagrams sent one by one with different codepoints. A veth with GRO on (`ethtool -K gro
/// on` gives it a NAPI context) merges back-to-back datagrams of one flow for a UDP_GRO socket; the
/// merged read carries one IP_TOS / IPV6_TCLASS cmsg, so the kernel must never merge datagrams of
/// different codepoints (inet_gro_receive / ipv6_gro_receive flush on a different TOS or traffic
/// class; udp_gro_receive_segment has honoured that flush only since the 2024 fix "net: gro: add
/// flush check in udp_gro_receive_segment" and its stable backports, so this test is also a check
/// of the kernel it runs on). The test asserts that GRO did
/// merge (else it would prove nothing) and that every datagram kept its own codepoint, also when
/// the datagrams are larger than the receiver's buffers (the oversize path, 64 KiB buffers).
/// </summary>
public sealed class EcnReviewGroTests
{
    // Runs of one codepoint, then single datagrams of another between them: every kind of boundary.
    private static readonly (Ecn Ecn, int Count)[] Runs =
    [
        (Ecn.Ect0, 6), (Ecn.Ce, 1), (Ecn.Ect0, 6), (Ecn.Ce, 3), (Ecn.Ect1, 5), (Ecn.NotEct, 4),
        (Ecn.Ect0, 8), (Ecn.Ect1, 1), (Ecn.Ect0, 6), (Ecn.Ce, 2), (Ecn.Ect0, 6),
    ];

    [Theory]
    [InlineData(4, 1400)]
    [InlineData(6, 1400)]
    [InlineData(4, 3000)] // larger than the receiver's 2 KiB buffers: each goes to a 64 KiB buffer
    [InlineData(6, 3000)]
    public void Datagrams_merged_by_kernel_gro_keep_each_their_own_codepoint(int family, int length)
    {
        using var left = new NetworkNamespace();
        using var right = new NetworkNamespace();
        string suffix = NetworkNamespace.UniqueSuffix();
        string a = "fzea" + suffix, b = "fzeb" + suffix;
        Command.Check("ip", "link", "add", a, "netns", left.Name, "type", "veth", "peer", "name", b, "netns", right.Name);
        string local = family == 4 ? "10.78.0.1" : "fd78::1", remote = family == 4 ? "10.78.0.2" : "fd78::2";
        string prefix = family == 4 ? "/24" : "/64";
        Command.Check("ip", "-n", left.Name, "link", "set", a, "mtu", "9000");
        Command.Check("ip", "-n", right.Name, "link", "set", b, "mtu", "9000");
        Command.Check("ip", "-n", left.Name, "addr", "add", local + prefix, "dev", a, "nodad");
        Command.Check("ip", "-n", right.Name, "addr", "add", remote + prefix, "dev", b, "nodad");
        Command.Check("ip", "-n", left.Name, "link", "set", a, "up");
        Command.Check("ip", "-n", right.Name, "link", "set", b, "up");
        // The neighbour known before the first send: datagrams queued while it is resolved can be
        // overtaken by a later one when the queue is let go (seen under load in the IPv6 case), and
        // the test is about GRO's order, not neighbour discovery's.
        Command.Check("ip", "-n", right.Name, "link", "set", b, "address", "02:00:00:00:00:02");
        Command.Check("ip", "-n", left.Name, "neigh", "replace", remote, "lladdr", "02:00:00:00:00:02", "dev", a, "nud", "permanent");
        // GRO on gives the veth a NAPI context; threaded NAPI lets it poll on the other core while
        // the sender is still sending, so one poll finds a run of datagrams to merge (a poll run
        // inline after each send would find one datagram at a time).
        // GRO must be switched (off, then on) to count as asked for (veth_gro_requested), and a
        // veth hands a datagram from a TSO-capable peer to NAPI only with rx-udp-gro-forwarding
        // (veth_skb_is_eligible_for_gro).
        var (code, output) = right.Exec(TimeSpan.FromSeconds(10), "ethtool", "-K", b, "gro", "off");
        Assert.True(code == 0, $"ethtool -K {b} gro off: {output}");
        (code, output) = right.Exec(TimeSpan.FromSeconds(10), "ethtool", "-K", b, "gro", "on", "rx-udp-gro-forwarding", "on");
        Assert.True(code == 0, $"ethtool -K {b} gro on: {output}");
        (code, output) = right.Exec(TimeSpan.FromSeconds(10), "sh", "-c", $"echo 1 > /sys/class/net/{b}/threaded");
        Assert.True(code == 0, $"threaded NAPI on {b}: {output}");

        using var sender = left.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions { UseGso = false }));
        using var receiver = right.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        Assert.True(receiver.GroEnabled);
        var sendPool = new PacketBufferPool(PacketBuffer.Headroom + 4096 + PacketBuffer.Tailroom, preallocate: 0, maxBuffers: 256);
        var receivePool = new PacketBufferPool(preallocate: 64); // 2 KiB buffers
        WaitUntilTheVethDelivers(right, b, sender, receiver, sendPool, receivePool, UdpTestKit.Endpoint(remote, receiver.LocalPort));
        PacketBuffer[] batch = Batch(sendPool, length, UdpTestKit.Endpoint(remote, receiver.LocalPort));
        Ecn[] expected = UdpGsoGroLoopbackTests.Codepoints(batch);
        // Several rounds: GRO merges what one NAPI poll finds, which depends on scheduling; the
        // codepoints must be right in every round, and merging must have happened in some (rounds
        // go on, up to a bound, until it has).
        for (int round = 0; round < 3 || (receiver.GroReads == 0 && round < 100); round++)
        {
            Assert.Equal(batch.Length, sender.SendBatch(batch));
            Assert.Equal(0, sender.GsoSends);
            List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, receivePool, batch.Length);
            UdpGsoGroLoopbackTests.AssertInOrder($"IPv{family} round {round}", received, expected, length,
                UdpTestKit.Endpoint(local, sender.LocalPort));
        }
        UdpGsoGroLoopbackTests.ReturnAll(batch);
        Assert.True(receiver.GroReads > 0, "the kernel merged nothing: the test proved nothing");
        Assert.Equal(length > 2000, receiver.ReceivedOversize > 0);
        Assert.Equal(0, receiver.ReceiveTruncated);
        Assert.Equal(0, receiver.OversizeOutstanding);
        Assert.Equal(0, receivePool.Outstanding);
        Assert.Equal(0, sendPool.Outstanding);
    }

    /// <summary>
    /// The lab before the test: one small datagram must cross. Once in a clean-clone CI run under
    /// load (2026-11-27), the IPv4 3000-byte case received nothing at all within 10 s in its first
    /// round, and never since in dozens of runs: a veth whose GRO context did not take delivers
    /// nothing. Switching GRO off and on again is retried a few times; the test's own rounds and
    /// assertions are unchanged.
    /// </summary>
    private static void WaitUntilTheVethDelivers(NetworkNamespace right, string b, LinuxUdpSocket sender, LinuxUdpSocket receiver,
        PacketBufferPool sendPool, PacketBufferPool receivePool, UdpEndpoint destination)
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var probe = UdpTestKit.Datagram(sendPool, 200, 100, Ecn.NotEct, destination);
            Assert.Equal(1, sender.SendBatch([probe]));
            probe.Return();
            if (UdpTestKit.ReceiveExactly(receiver, receivePool, 1, TimeSpan.FromSeconds(3), failOnTimeout: false) is { } arrived)
            {
                UdpGsoGroLoopbackTests.ReturnAll(arrived);
                return;
            }
            right.Exec(TimeSpan.FromSeconds(10), "ethtool", "-K", b, "gro", "off");
            right.Exec(TimeSpan.FromSeconds(10), "ethtool", "-K", b, "gro", "on", "rx-udp-gro-forwarding", "on");
        }
        Assert.Fail($"the veth {b} delivered none of 3 probe datagrams (receiver: {receiver.ReceiveControlTruncated} reads with cut control data)");
    }

    private static PacketBuffer[] Batch(PacketBufferPool pool, int length, UdpEndpoint destination)
    {
        var list = new List<PacketBuffer>();
        foreach (var (ecn, count) in Runs)
        {
            for (int i = 0; i < count; i++)
            {
                list.Add(UdpTestKit.Datagram(pool, list.Count, length, ecn, destination));
            }
        }
        return [.. list];
    }
}
