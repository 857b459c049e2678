using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// A socket buffer that stays full must cost one bounded wait per SendBatch, not one per message:
/// SendBatch runs on the SocketIO actor, and every datagram queued behind it waits too.
/// </summary>
public sealed class UdpSendStallTests
{
    [Fact]
    public void A_full_send_buffer_drops_the_rest_of_the_batch_after_one_stall()
    {
        using var ns = new NetworkNamespace();
        // Loopback throttled to 1 kB/s with a 60 s queue: after the first couple of datagrams the
        // qdisc holds the socket's (minimum-size) send buffer and the kernel answers EAGAIN.
        Command.Check("ip", "netns", "exec", ns.Name, "tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "8kbit", "burst", "2000", "latency", "60s");
        var result = ns.RunInside(() =>
        {
            var pool = new PacketBufferPool();
            using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only });
            using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, SendBufferBytes = 4096, UseGso = false });
            var destination = UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort);
            var datagrams = new PacketBuffer[64];
            for (int i = 0; i < datagrams.Length; i++)
            {
                datagrams[i] = UdpTestKit.Datagram(pool, i, 1000, Ecn.Ect0, destination);
            }
            int sent = sender.SendBatch(datagrams);
            foreach (var datagram in datagrams)
            {
                datagram.Return();
            }
            return (Sent: sent, sender.SendDropped, sender.SendStalls, sender.SendErrors);
        });
        Assert.True(result.SendDropped > 0, $"expected drops on a full buffer, sent {result.Sent}");
        Assert.Equal(64, result.Sent + result.SendDropped);
        Assert.Equal(0, result.SendErrors);
        // One give-up for the whole batch: the remainder was dropped without waiting again.
        Assert.Equal(1, result.SendStalls);
    }
}
