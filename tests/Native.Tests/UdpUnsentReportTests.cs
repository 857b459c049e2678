using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Xunit.Abstractions;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// SendBatch names each datagram the kernel did not take, with its errno, so the peer that counted
/// it as sent can take it off its transfer (`wg show` counts what left, as wireguard-go does) and say why.
/// </summary>
public sealed class UdpUnsentReportTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Refused_datagrams_and_refused_GSO_runs_carry_their_errno_and_the_sent_ones_nothing(bool gso)
    {
        var pool = new PacketBufferPool();
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions());
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { UseGso = gso });
        var good = UdpTestKit.Endpoint("::1", receiver.LocalPort);
        var refused = UdpTestKit.Endpoint("::1", 0); // port 0: EINVAL, a per-datagram refusal
        // Datagrams 3-5 share destination, length and codepoint: one GSO send when GSO is on, which
        // the kernel refuses as a whole and the socket retries one by one (each refused again).
        PacketBuffer[] datagrams =
        [
            UdpTestKit.Datagram(pool, 1, 100, Ecn.Ect0, good),
            UdpTestKit.Datagram(pool, 2, 100, Ecn.Ect0, refused),
            UdpTestKit.Datagram(pool, 3, 200, Ecn.Ce, good),
            UdpTestKit.Datagram(pool, 4, 300, Ecn.Ect1, refused),
            UdpTestKit.Datagram(pool, 5, 300, Ecn.Ect1, refused),
            UdpTestKit.Datagram(pool, 6, 300, Ecn.Ect1, refused),
            UdpTestKit.Datagram(pool, 7, 100, Ecn.NotEct, good),
        ];
        var unsent = new int[datagrams.Length + 2];
        Assert.Equal(3, sender.SendBatch(datagrams, unsent));
        const int EINVAL = 22;
        output.WriteLine($"GSO {sender.GsoEnabled}, refused with errno {sender.LastSendErrno}, GSO refusals {sender.GsoRefused}");
        Assert.Equal([0, EINVAL, 0, EINVAL, EINVAL, EINVAL, 0, 0, 0], unsent);
        Assert.Equal(4, sender.SendErrors);
        Assert.Equal(gso ? 1 : 0, sender.GsoRefused); // with GSO, the run was one send, retried one by one
        foreach (var datagram in datagrams)
        {
            datagram.Return();
        }
        var received = UdpTestKit.ReceiveExactly(receiver, pool, 3);
        Assert.Equal([1, 3, 7], received.Select(UdpTestKit.NumberOf).Order());
        received.ForEach(b => b.Return());
    }

    [Fact]
    public void An_IPv6_destination_on_an_IPv4_only_socket_carries_EAFNOSUPPORT()
    {
        var pool = new PacketBufferPool();
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only });
        PacketBuffer[] datagrams =
        [
            UdpTestKit.Datagram(pool, 1, 32, Ecn.Ect0, UdpTestKit.Endpoint("::1", receiver.LocalPort)),
            UdpTestKit.Datagram(pool, 2, 32, Ecn.Ect0, UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort)),
        ];
        var unsent = new int[2];
        Assert.Equal(1, sender.SendBatch(datagrams, unsent));
        Assert.Equal([97, 0], unsent); // EAFNOSUPPORT
        foreach (var datagram in datagrams)
        {
            datagram.Return();
        }
        UdpTestKit.ReceiveExactly(receiver, pool, 1).ForEach(b => b.Return());
    }

    [Fact]
    public void Fewer_errno_slots_than_datagrams_is_refused_before_anything_is_sent()
    {
        var pool = new PacketBufferPool();
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions());
        PacketBuffer[] datagrams =
        [
            UdpTestKit.Datagram(pool, 1, 32, Ecn.Ect0, UdpTestKit.Endpoint("::1", sender.LocalPort)),
            UdpTestKit.Datagram(pool, 2, 32, Ecn.Ect0, UdpTestKit.Endpoint("::1", sender.LocalPort)),
        ];
        var error = Assert.Throws<ArgumentException>(() => sender.SendBatch(datagrams, new int[1]));
        Assert.Contains("1 errno slots for 2 datagrams", error.Message);
        Assert.False(sender.WaitReadable(0));
        foreach (var datagram in datagrams)
        {
            datagram.Return();
        }
    }
}
