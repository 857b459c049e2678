using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// A datagram larger than the receiver's buffers (a peer whose MTU is above ours) arrives whole in a
/// large buffer of the socket's own, as the kernel's WireGuard and wireguard-go take it; a socket
/// without GRO, whose read cuts it short, counts it as dropped; a read that runs out of large buffers
/// leaves the rest for the next read; with every large buffer held, more are dropped and counted.
/// </summary>
public sealed class UdpOversizeReceiveTests
{
    private const int LargeBuffer = PacketBuffer.Headroom + 9000 + PacketBuffer.Tailroom;

    private static void Send(LinuxUdpSocket sender, LinuxUdpSocket receiver, params int[] lengths)
    {
        var pool = new PacketBufferPool(LargeBuffer, preallocate: 0, maxBuffers: 1024);
        var batch = new PacketBuffer[lengths.Length];
        for (int i = 0; i < lengths.Length; i++)
        {
            batch[i] = UdpTestKit.Datagram(pool, i, lengths[i], Ecn.Ect0, UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort));
        }
        Assert.Equal(lengths.Length, sender.SendBatch(batch));
        UdpGsoGroLoopbackTests.ReturnAll(batch);
    }

    [Fact]
    public void A_datagram_larger_than_the_buffers_arrives_whole_in_a_large_buffer()
    {
        using var ns = new NetworkNamespace();
        using var receiver = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        Assert.True(receiver.GroEnabled);
        var pool = new PacketBufferPool(preallocate: 64); // 2 KiB buffers: packets up to 1984 bytes
        Send(sender, receiver, 1000, 3000, 8000, 1200);

        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, 4);
        Assert.Equal([1000, 3000, 8000, 1200], received.Select(b => b.Length));
        Assert.Equal([0, 1, 2, 3], received.Select(UdpTestKit.NumberOf));
        Assert.Equal(Ecn.Ect0, received[2].Ecn);
        Assert.Equal(sender.LocalPort, received[2].Endpoint.Port);
        Assert.Same(pool, received[0].Pool);
        Assert.NotSame(pool, received[1].Pool);
        Assert.Equal(2, receiver.ReceivedOversize);
        Assert.Equal(0, receiver.ReceiveTruncated);
        UdpGsoGroLoopbackTests.ReturnAll(received);
        Assert.Equal(0, receiver.OversizeOutstanding);
        Assert.Equal(0, pool.Outstanding); // the small buffers the large ones replaced went back too
    }

    [Fact]
    public void Without_GRO_a_datagram_larger_than_the_buffers_is_counted_as_dropped()
    {
        using var ns = new NetworkNamespace();
        using var receiver = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions { UseGro = false }));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        var pool = new PacketBufferPool(preallocate: 64);
        Send(sender, receiver, 1000, 3000, 1200);

        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, 2);
        Assert.Equal([1000, 1200], received.Select(b => b.Length));
        Assert.Equal(1, receiver.ReceiveTruncated);
        UdpGsoGroLoopbackTests.ReturnAll(received);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void A_read_that_runs_out_of_large_buffers_ends_there_and_the_next_read_takes_the_rest()
    {
        using var ns = new NetworkNamespace();
        using var receiver = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        var pool = new PacketBufferPool(preallocate: 64, maxBuffers: 4096);
        // All but 6 large buffers held (an earlier read's packets not written yet) ...
        Send(sender, receiver, Enumerable.Repeat(3000, LinuxUdpSocket.MaxOversizeBuffers - 6).ToArray());
        List<PacketBuffer> held = UdpTestKit.ReceiveExactly(receiver, pool, LinuxUdpSocket.MaxOversizeBuffers - 6);
        // ... and 10 more jumbo datagrams arrive: this read takes 6 and leaves 4, none dropped.
        Send(sender, receiver, Enumerable.Repeat(3000, 10).ToArray());
        var batch = new PacketBuffer[64];
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = pool.Rent();
        }
        Assert.True(receiver.WaitReadable(10_000));
        Assert.Equal(6, receiver.TryReceiveBatch(batch));
        Assert.Equal(0, receiver.ReceiveTruncated);
        Assert.True(receiver.WaitReadable(0), "the rest waits, readable at once");
        UdpGsoGroLoopbackTests.ReturnAll(held);
        UdpGsoGroLoopbackTests.ReturnAll(batch.Take(6));
        for (int i = 0; i < 6; i++)
        {
            batch[i] = pool.Rent();
        }
        Assert.Equal(4, receiver.TryReceiveBatch(batch));
        Assert.Equal(0, receiver.ReceiveTruncated);
        UdpGsoGroLoopbackTests.ReturnAll(batch);
        Assert.Equal(0, receiver.OversizeOutstanding);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void At_most_MaxOversizeBuffers_are_out_at_once_and_more_datagrams_are_dropped_and_counted()
    {
        using var ns = new NetworkNamespace();
        using var receiver = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        var pool = new PacketBufferPool(preallocate: 64);
        int total = LinuxUdpSocket.MaxOversizeBuffers + 6;
        Send(sender, receiver, Enumerable.Repeat(3000, total).ToArray());

        // Held, as by a stuck consumer: the later ones find no large buffer.
        List<PacketBuffer> held = UdpTestKit.ReceiveExactly(receiver, pool, LinuxUdpSocket.MaxOversizeBuffers);
        var more = new PacketBuffer[8];
        for (int i = 0; i < more.Length; i++)
        {
            more[i] = pool.Rent();
        }
        Assert.Equal(0, receiver.TryReceiveBatch(more));
        Assert.Equal(6, receiver.ReceiveTruncated);
        UdpGsoGroLoopbackTests.ReturnAll(more);
        UdpGsoGroLoopbackTests.ReturnAll(held);

        // Returned: large buffers are free again.
        Send(sender, receiver, 3000);
        List<PacketBuffer> after = UdpTestKit.ReceiveExactly(receiver, pool, 1);
        Assert.Equal(3000, after[0].Length);
        UdpGsoGroLoopbackTests.ReturnAll(after);
        Assert.Equal(0, receiver.OversizeOutstanding);
        Assert.Equal(0, pool.Outstanding);
    }
}
