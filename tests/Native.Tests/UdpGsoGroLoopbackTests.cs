using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// UDP GSO sends and UDP GRO receives through the real kernel on loopback: every datagram arrives
/// once, in order, with its own payload, length and ECN codepoint, whether the receiver has GRO
/// (on lo a GSO send then arrives as one coalesced read, split by the socket) or not (the kernel
/// cuts it). A GSO send that mixed codepoints would show up here as a wrong codepoint on the
/// datagrams of a coalesced read, which has only one IP header.
/// </summary>
public sealed class UdpGsoGroLoopbackTests
{
    private static readonly (Ecn, int)[] MixedRuns = [(Ecn.Ect0, 10), (Ecn.Ce, 3), (Ecn.Ect0, 5), (Ecn.NotEct, 4)];

    public static TheoryData<string, UdpSocketFamily, string, bool> Paths => new()
    {
        // case, socket family, destination, receiver has GRO
        { "IPv4, plain receiver", UdpSocketFamily.IPv4Only, "127.0.0.1", false },
        { "IPv6, plain receiver", UdpSocketFamily.DualStack, "::1", false },
        { "IPv4-mapped, plain receiver", UdpSocketFamily.DualStack, "::ffff:127.0.0.1", false },
        { "IPv4, GRO receiver", UdpSocketFamily.IPv4Only, "127.0.0.1", true },
        { "IPv6, GRO receiver", UdpSocketFamily.DualStack, "::1", true },
        { "IPv4-mapped, GRO receiver", UdpSocketFamily.DualStack, "::ffff:127.0.0.1", true },
    };

    [Theory]
    [MemberData(nameof(Paths))]
    public void Runs_of_codepoints_arrive_as_individual_datagrams_with_their_own_codepoint(string path, UdpSocketFamily family, string destination, bool gro)
    {
        var pool = new PacketBufferPool(preallocate: 128);
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = family, UseGro = gro });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = family });
        Assert.True(sender.GsoEnabled, $"{path}: this kernel should have UDP_SEGMENT");
        Assert.Equal(gro, receiver.GroEnabled);

        PacketBuffer[] batch = UdpGsoGroupingTests.Batch(pool, MixedRuns, 1452, UdpTestKit.Endpoint(destination, receiver.LocalPort));
        Ecn[] expected = Codepoints(batch);
        int sent = sender.SendBatch(batch);
        ReturnAll(batch);
        Assert.Equal(22, sent);
        Assert.Equal(4, sender.GsoSends); // one per run: 10, 3, 5, 4
        Assert.Equal(22, sender.GsoDatagrams);

        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, 22);
        string source = destination == "::1" ? "::1" : "127.0.0.1";
        AssertInOrder(path, received, expected, 1452, UdpTestKit.Endpoint(source, sender.LocalPort));
        if (gro)
        {
            // On lo a GSO send reaches a UDP_GRO socket uncut: one read per run.
            Assert.Equal(4, receiver.GroReads);
            Assert.Equal(22, receiver.GroDatagrams);
        }
        else
        {
            Assert.Equal(0, receiver.GroReads);
        }
        Assert.Equal(0, pool.Outstanding);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Interleaved_destinations_each_get_their_datagrams_in_order(bool gro)
    {
        var pool = new PacketBufferPool(preallocate: 128);
        using var first = new LinuxUdpSocket(new UdpBatchSocketOptions { UseGro = gro });
        using var second = new LinuxUdpSocket(new UdpBatchSocketOptions { UseGro = gro });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions());
        UdpEndpoint a = UdpTestKit.Endpoint("::1", first.LocalPort);
        UdpEndpoint b = UdpTestKit.Endpoint("::ffff:127.0.0.1", second.LocalPort);
        // a x5, b x5, a x5, then a/b alternating x6 (no GSO for those), all ECT(0).
        var batch = new PacketBuffer[21];
        for (int i = 0; i < batch.Length; i++)
        {
            UdpEndpoint to = i < 5 ? a : i < 10 ? b : i < 15 ? a : (i % 2 == 0 ? a : b);
            batch[i] = UdpTestKit.Datagram(pool, i, 1200, Ecn.Ect0, to);
        }
        var toA = new List<int>();
        var toB = new List<int>();
        for (int i = 0; i < batch.Length; i++)
        {
            (batch[i].Endpoint == a ? toA : toB).Add(i);
        }
        Assert.Equal(21, sender.SendBatch(batch));
        ReturnAll(batch);
        Assert.Equal(3, sender.GsoSends);
        Assert.Equal(15, sender.GsoDatagrams);

        AssertNumbers(UdpTestKit.ReceiveExactly(first, pool, toA.Count), toA, UdpTestKit.Endpoint("::1", sender.LocalPort));
        AssertNumbers(UdpTestKit.ReceiveExactly(second, pool, toB.Count), toB, UdpTestKit.Endpoint("127.0.0.1", sender.LocalPort));
        Assert.Equal(0, pool.Outstanding);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_shorter_last_segment_keeps_its_length(bool gro)
    {
        var pool = new PacketBufferPool(preallocate: 64);
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { UseGro = gro });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions());
        UdpEndpoint to = UdpTestKit.Endpoint("::1", receiver.LocalPort);
        int[] lengths = [1000, 1000, 1000, 1000, 1000, 1000, 1000, 333, 1400, 1400, 1400, 77];
        var batch = new PacketBuffer[lengths.Length];
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = UdpTestKit.Datagram(pool, i, lengths[i], Ecn.Ce, to);
        }
        Assert.Equal(lengths.Length, sender.SendBatch(batch));
        ReturnAll(batch);
        Assert.Equal(2, sender.GsoSends);

        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, lengths.Length);
        for (int i = 0; i < received.Count; i++)
        {
            Assert.Equal(i, UdpTestKit.NumberOf(received[i]));
            Assert.Equal(lengths[i], received[i].Length);
            Assert.Equal(Ecn.Ce, received[i].Ecn);
            received[i].Return();
        }
        Assert.Equal(gro ? 2 : 0, receiver.GroReads);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void More_coalesced_datagrams_than_the_span_holds_are_handed_out_over_several_calls()
    {
        var pool = new PacketBufferPool(preallocate: 128);
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions());
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions());
        PacketBuffer[] batch = UdpGsoGroupingTests.Batch(pool, [(Ecn.Ect1, 40)], 1452, UdpTestKit.Endpoint("::1", receiver.LocalPort));
        Assert.Equal(40, sender.SendBatch(batch));
        ReturnAll(batch);
        Assert.Equal(1, sender.GsoSends);

        // Nothing else is queued after the first read: the later calls must not wait in poll (a
        // wait would end only at the deadline's wake, returning 0 and failing the count).
        using var deadline = new Timer(_ => receiver.WakeReceiver(), null, TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan);
        var span = new PacketBuffer[7];
        int next = 0;
        int calls = 0;
        while (next < 40)
        {
            for (int i = 0; i < span.Length; i++)
            {
                span[i] = pool.Rent();
            }
            int count = receiver.ReceiveBatch(span);
            calls++;
            Assert.Equal(Math.Min(7, 40 - next), count);
            for (int i = 0; i < span.Length; i++)
            {
                if (i < count)
                {
                    Assert.Equal(next++, UdpTestKit.NumberOf(span[i]));
                    Assert.Equal(Ecn.Ect1, span[i].Ecn);
                }
                span[i].Return();
            }
        }
        Assert.Equal(6, calls);
        Assert.Equal(1, receiver.GroReads);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void With_GSO_off_by_option_every_datagram_is_its_own_send()
    {
        var pool = new PacketBufferPool(preallocate: 64);
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { UseGro = false });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { UseGso = false });
        Assert.False(sender.GsoEnabled);
        PacketBuffer[] batch = UdpGsoGroupingTests.Batch(pool, MixedRuns, 1452, UdpTestKit.Endpoint("::1", receiver.LocalPort));
        Ecn[] expected = Codepoints(batch);
        Assert.Equal(22, sender.SendBatch(batch));
        ReturnAll(batch);
        Assert.Equal(0, sender.GsoSends);
        AssertInOrder("GSO off", UdpTestKit.ReceiveExactly(receiver, pool, 22), expected, 1452, UdpTestKit.Endpoint("::1", sender.LocalPort));
        Assert.Equal(0, pool.Outstanding);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void One_sendmsg_per_message_also_carries_GSO_sends(bool gro)
    {
        var pool = new PacketBufferPool(preallocate: 64);
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { UseGro = gro, UseMmsg = false });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { UseMmsg = false });
        PacketBuffer[] batch = UdpGsoGroupingTests.Batch(pool, MixedRuns, 1452, UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort));
        Ecn[] expected = Codepoints(batch);
        Assert.Equal(22, sender.SendBatch(batch));
        ReturnAll(batch);
        Assert.Equal(4, sender.GsoSends);
        AssertInOrder("sendmsg/recvmsg", UdpTestKit.ReceiveExactly(receiver, pool, 22), expected, 1452, UdpTestKit.Endpoint("127.0.0.1", sender.LocalPort));
        Assert.Equal(0, pool.Outstanding);
    }

    internal static Ecn[] Codepoints(PacketBuffer[] batch)
    {
        var codepoints = new Ecn[batch.Length];
        for (int i = 0; i < batch.Length; i++)
        {
            codepoints[i] = batch[i].Ecn;
        }
        return codepoints;
    }

    /// <summary>Datagram i arrived i-th, with its payload, length and codepoint, from the sender; returns the buffers.</summary>
    internal static void AssertInOrder(string path, List<PacketBuffer> received, Ecn[] expected, int length, UdpEndpoint source)
    {
        Assert.Equal(expected.Length, received.Count);
        for (int i = 0; i < received.Count; i++)
        {
            PacketBuffer buffer = received[i];
            Assert.Equal(i, UdpTestKit.NumberOf(buffer));
            Assert.Equal(length, buffer.Length);
            Assert.Equal(PacketBuffer.Headroom, buffer.Offset);
            Assert.True(expected[i] == buffer.Ecn, $"{path}: datagram {i} sent as {expected[i]} arrived as {buffer.Ecn}");
            Assert.Equal(source, buffer.Endpoint);
        }
        ReturnAll(received);
    }

    private static void AssertNumbers(List<PacketBuffer> received, List<int> expected, UdpEndpoint source)
    {
        Assert.Equal(expected.Count, received.Count);
        for (int i = 0; i < received.Count; i++)
        {
            Assert.Equal(expected[i], UdpTestKit.NumberOf(received[i]));
            Assert.Equal(Ecn.Ect0, received[i].Ecn);
            Assert.Equal(source, received[i].Endpoint);
        }
        ReturnAll(received);
    }

    internal static void ReturnAll(IEnumerable<PacketBuffer> buffers)
    {
        foreach (var buffer in buffers)
        {
            buffer.Return();
        }
    }
}
