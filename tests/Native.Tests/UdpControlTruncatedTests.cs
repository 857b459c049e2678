using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// A read whose control data the kernel cut (MSG_CTRUNC: the room offered was too small) may lack
/// its UDP_GRO segment size, its ECN codepoint and its local address. It is dropped and counted,
/// never delivered: without the segment size a GRO read of several datagrams came out as one
/// datagram of their joined bytes, and without IP_TOS a CE mark was delivered as Not-ECT. The
/// socket's own control room (MessageBatch.ControlSlot) is never cut by today's kernels; these tests
/// offer less to make the kernel cut it, through the real recvmmsg on loopback.
/// </summary>
public sealed class UdpControlTruncatedTests
{
    /// <summary>
    /// Receives for up to 5 s, until <paramref name="reads"/> reads were either delivered or counted as
    /// cut; returns what was delivered (the caller returns the buffers).
    /// </summary>
    private static List<PacketBuffer> ReceiveReads(LinuxUdpSocket socket, PacketBufferPool pool, int reads)
    {
        var delivered = new List<PacketBuffer>();
        var batch = new PacketBuffer[16];
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (delivered.Count + socket.ReceiveControlTruncated < reads && DateTime.UtcNow < deadline)
        {
            if (!socket.WaitReadable(100))
            {
                continue;
            }
            for (int i = 0; i < batch.Length; i++)
            {
                batch[i] = pool.Rent();
            }
            int count = socket.TryReceiveBatch(batch);
            for (int i = 0; i < batch.Length; i++)
            {
                if (i < count)
                {
                    delivered.Add(batch[i]);
                }
                else
                {
                    batch[i].Return();
                }
            }
        }
        return delivered;
    }

    private static PacketBuffer[] Run(PacketBufferPool pool, int count, int length, Ecn ecn, UdpEndpoint to)
    {
        var batch = new PacketBuffer[count];
        for (int i = 0; i < count; i++)
        {
            batch[i] = UdpTestKit.Datagram(pool, i, length, ecn, to);
        }
        return batch;
    }

    /// <param name="room">0: no room at all; 16: a cmsghdr but not its data, so the UDP_GRO cmsg (the kernel's first) is cut.</param>
    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    public void A_GRO_read_without_its_segment_size_is_dropped_and_counted_not_delivered_as_one_datagram(int room)
    {
        var pool = new PacketBufferPool(preallocate: 64);
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only });
        Assert.True(receiver.GroEnabled);
        Assert.True(sender.GsoEnabled);
        UdpEndpoint to = UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort);

        receiver.ReceiveControlRoom = room;
        PacketBuffer[] batch = Run(pool, 3, 1000, Ecn.Ect0, to);
        Assert.Equal(3, sender.SendBatch(batch));
        UdpGsoGroLoopbackTests.ReturnAll(batch);
        Assert.Equal(1, sender.GsoSends); // one coalesced read at a UDP_GRO socket on lo
        List<PacketBuffer> delivered = ReceiveReads(receiver, pool, 1);
        string seen = string.Join(", ", delivered.Select(b => b.Length));
        UdpGsoGroLoopbackTests.ReturnAll(delivered);
        Assert.True(delivered.Count == 0, $"a cut GRO read was delivered as datagrams of {seen} bytes");
        Assert.Equal(1, receiver.ReceiveControlTruncated);
        Assert.Equal(0, receiver.ReceiveTruncated);

        // With its room back, the socket reads the next run as three datagrams again.
        receiver.ReceiveControlRoom = int.MaxValue;
        batch = Run(pool, 3, 1000, Ecn.Ect0, to);
        Assert.Equal(3, sender.SendBatch(batch));
        UdpGsoGroLoopbackTests.ReturnAll(batch);
        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, 3);
        Assert.Equal([1000, 1000, 1000], received.Select(b => b.Length));
        Assert.Equal([0, 1, 2], received.Select(UdpTestKit.NumberOf));
        Assert.All(received, b => Assert.Equal(Ecn.Ect0, b.Ecn));
        UdpGsoGroLoopbackTests.ReturnAll(received);
        Assert.Equal(1, receiver.ReceiveControlTruncated);
        Assert.Equal(0, pool.Outstanding);
        Assert.Equal(0, receiver.OversizeOutstanding);
    }

    /// <param name="room">0: nothing; 32: IP_PKTINFO (the kernel's first, CMSG_SPACE(12)) fits, IP_TOS is cut.</param>
    [Theory]
    [InlineData(0)]
    [InlineData(32)]
    public void A_plain_read_without_its_codepoint_is_dropped_and_counted_not_delivered_as_not_ECT(int room)
    {
        var pool = new PacketBufferPool(preallocate: 64);
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGro = false });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGso = false });
        UdpEndpoint to = UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort);

        receiver.ReceiveControlRoom = room;
        PacketBuffer[] batch = Run(pool, 2, 200, Ecn.Ce, to);
        Assert.Equal(2, sender.SendBatch(batch));
        UdpGsoGroLoopbackTests.ReturnAll(batch);
        List<PacketBuffer> delivered = ReceiveReads(receiver, pool, 2);
        string seen = string.Join(", ", delivered.Select(b => b.Ecn));
        UdpGsoGroLoopbackTests.ReturnAll(delivered);
        Assert.True(delivered.Count == 0, $"cut reads of CE datagrams were delivered as {seen}");
        Assert.Equal(2, receiver.ReceiveControlTruncated);

        receiver.ReceiveControlRoom = int.MaxValue;
        batch = Run(pool, 2, 200, Ecn.Ce, to);
        Assert.Equal(2, sender.SendBatch(batch));
        UdpGsoGroLoopbackTests.ReturnAll(batch);
        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, 2);
        Assert.All(received, b => Assert.Equal(Ecn.Ce, b.Ecn));
        UdpGsoGroLoopbackTests.ReturnAll(received);
        Assert.Equal(2, receiver.ReceiveControlTruncated);
        Assert.Equal(0, pool.Outstanding);
    }
}
