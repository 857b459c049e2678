using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// ECN review of the oversize receive path (LinuxUdpSocket.Oversize.cs): a GRO read whose datagrams
/// wait in their slot because the large buffers ran out must be handed out later, each with its own
/// read's codepoint, or be counted as dropped; never lost without a trace.
/// </summary>
public sealed class EcnReviewOversizeTests
{
    private static void Send(LinuxUdpSocket sender, LinuxUdpSocket receiver, int first, int count, int length, Ecn ecn)
    {
        var pool = new PacketBufferPool(PacketBuffer.Headroom + 9000 + PacketBuffer.Tailroom, preallocate: 0, maxBuffers: 1024);
        var batch = new PacketBuffer[count];
        for (int i = 0; i < count; i++)
        {
            batch[i] = UdpTestKit.Datagram(pool, first + i, length, ecn, UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort));
        }
        Assert.Equal(count, sender.SendBatch(batch));
        UdpGsoGroLoopbackTests.ReturnAll(batch);
    }

    private static PacketBuffer[] Rent(PacketBufferPool pool, int count)
    {
        var batch = new PacketBuffer[count];
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = pool.Rent();
        }
        return batch;
    }

    [Fact]
    public void Datagrams_left_in_their_slot_for_want_of_large_buffers_are_handed_out_later_with_their_codepoint()
    {
        using var ns = new NetworkNamespace();
        using var receiver = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        var pool = new PacketBufferPool(preallocate: 64, maxBuffers: 4096);
        // All but 6 large buffers held by packets not written yet.
        Send(sender, receiver, 0, LinuxUdpSocket.MaxOversizeBuffers - 6, 3000, Ecn.Ect0);
        List<PacketBuffer> held = UdpTestKit.ReceiveExactly(receiver, pool, LinuxUdpSocket.MaxOversizeBuffers - 6);

        // A jumbo burst (one GRO read of 10, CE) and then small datagrams (one read of 5, ECT(1)).
        Send(sender, receiver, 100, 10, 3000, Ecn.Ce);
        Send(sender, receiver, 200, 5, 1000, Ecn.Ect1);
        Assert.True(receiver.WaitReadable(10_000));
        var delivered = new List<PacketBuffer>();
        PacketBuffer[] batch = Rent(pool, 64);
        int got = receiver.TryReceiveBatch(batch);
        Assert.Equal(6, got); // the large buffers ran out: the read ends there
        delivered.AddRange(batch.Take(got));
        UdpGsoGroLoopbackTests.ReturnAll(batch.Skip(got));

        // Two large buffers come back (two packets written); the next read takes two more jumbo
        // datagrams, runs out again, and must leave the other two and the small ones waiting.
        held[0].Return();
        held[1].Return();
        held.RemoveRange(0, 2);
        batch = Rent(pool, 64);
        got = receiver.TryReceiveBatch(batch);
        delivered.AddRange(batch.Take(got));
        UdpGsoGroLoopbackTests.ReturnAll(batch.Skip(got));

        // Everything back: the rest arrives.
        UdpGsoGroLoopbackTests.ReturnAll(held);
        for (int attempt = 0; attempt < 3 && receiver.WaitReadable(attempt == 0 ? 1000 : 100); attempt++)
        {
            batch = Rent(pool, 64);
            got = receiver.TryReceiveBatch(batch);
            delivered.AddRange(batch.Take(got));
            UdpGsoGroLoopbackTests.ReturnAll(batch.Skip(got));
        }

        var numbers = delivered.Select(UdpTestKit.NumberOf).ToList();
        string seen = string.Join(",", numbers);
        Assert.True(15 == delivered.Count + receiver.ReceiveTruncated,
            $"15 datagrams sent, {delivered.Count} delivered ({seen}), {receiver.ReceiveTruncated} counted as dropped: the rest vanished");
        foreach (var buffer in delivered)
        {
            int number = UdpTestKit.NumberOf(buffer);
            Assert.Equal(number < 200 ? Ecn.Ce : Ecn.Ect1, buffer.Ecn);
            Assert.Equal(number < 200 ? 3000 : 1000, buffer.Length);
        }
        UdpGsoGroLoopbackTests.ReturnAll(delivered);
        Assert.Equal(0, receiver.OversizeOutstanding);
        Assert.Equal(0, pool.Outstanding);
    }
}
