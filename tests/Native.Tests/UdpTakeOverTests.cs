using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>LinuxUdpSocket.TakeOver: a new listen port under the same object (wg set listen-port).</summary>
public sealed class UdpTakeOverTests
{
    [Fact]
    public void A_reader_blocked_on_the_old_port_receives_on_the_new_one_and_the_old_port_is_free()
    {
        // In a namespace of its own: the old port is shown free by binding it again, and in the
        // root namespace a test running in parallel may be handed that port as its ephemeral port
        // once the take-over released it (the race A_given_listen_port_is_the_local_port hit in CI).
        using var ns = new NetworkNamespace();
        var pool = new PacketBufferPool();
        using var socket = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        using var sender = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        int oldPort = socket.LocalPort;
        var received = new List<PacketBuffer>();
        var reader = new Thread(() =>
        {
            // As the socket reader thread does: block in poll, then read what is there.
            var buffers = new PacketBuffer[4];
            while (received.Count == 0 && socket.WaitReadable(-1))
            {
                for (int i = 0; i < buffers.Length; i++)
                {
                    buffers[i] ??= pool.Rent();
                }
                int n = socket.TryReceiveBatch(buffers);
                for (int i = 0; i < n; i++)
                {
                    received.Add(buffers[i]);
                    buffers[i] = null!;
                }
            }
            foreach (var left in buffers)
            {
                left?.Return();
            }
        });
        reader.Start();
        Thread.Sleep(100); // let it block in poll on the old socket

        var replacement = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions()));
        int newPort = replacement.LocalPort;
        Assert.True(socket.TakeOver(replacement));
        Assert.Equal(newPort, socket.LocalPort);
        Assert.True(replacement.Handle.IsClosed); // its own number is closed; the socket lives on in ours

        var datagram = UdpTestKit.Datagram(pool, 7, 64, Ecn.Ce, UdpTestKit.Endpoint("::1", newPort));
        Assert.Equal(1, sender.SendBatch([datagram]));
        datagram.Return();
        Assert.True(reader.Join(TimeSpan.FromSeconds(5)), "the reader blocked on the old socket never saw the datagram sent to the new port");
        var only = Assert.Single(received);
        Assert.Equal(7, UdpTestKit.NumberOf(only));
        Assert.Equal(Ecn.Ce, only.Ecn); // the receive options (IP_RECVTOS/IPV6_RECVTCLASS) came with the replacement
        only.Return();

        // The old port is no one's any more: it can be bound again.
        using var again = ns.RunInside(() => new LinuxUdpSocket(new UdpBatchSocketOptions { ListenPort = oldPort }));
        Assert.Equal(oldPort, again.LocalPort);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void Sends_after_the_take_over_leave_from_the_new_port()
    {
        var pool = new PacketBufferPool();
        using var socket = new LinuxUdpSocket(new UdpBatchSocketOptions());
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions());
        Assert.True(socket.TakeOver(new LinuxUdpSocket(new UdpBatchSocketOptions())));
        var datagram = UdpTestKit.Datagram(pool, 3, 32, Ecn.Ect0, UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort));
        Assert.Equal(1, socket.SendBatch([datagram]));
        datagram.Return();
        var received = UdpTestKit.ReceiveExactly(receiver, pool, 1);
        Assert.Equal(socket.LocalPort, received[0].Endpoint.Port);
        received.ForEach(b => b.Return());
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void A_replacement_of_another_family_or_receive_merging_is_refused_and_nothing_changes()
    {
        using var socket = new LinuxUdpSocket(new UdpBatchSocketOptions());
        int port = socket.LocalPort;
        using var ipv4Only = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only });
        using var noGro = new LinuxUdpSocket(new UdpBatchSocketOptions { UseGro = false });
        Assert.True(socket.IsIPv6);
        Assert.True(socket.GroEnabled);

        Assert.False(socket.TakeOver(ipv4Only));
        Assert.False(socket.TakeOver(noGro));
        Assert.False(socket.TakeOver(socket));

        Assert.Equal(port, socket.LocalPort);
        Assert.False(ipv4Only.Handle.IsClosed); // still the caller's
        Assert.False(noGro.Handle.IsClosed);
    }
}
