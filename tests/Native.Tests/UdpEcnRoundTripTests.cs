using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// Every ECN codepoint survives a loopback round trip through the real kernel, per datagram, in
/// mixed batches: IPv4 on an IPv4-only socket, IPv6 on the dual-stack socket, and IPv4-mapped
/// destinations on the dual-stack socket (which need IP_TOS, not IPV6_TCLASS).
/// </summary>
public sealed class UdpEcnRoundTripTests
{
    private static readonly Ecn[] AllCodepoints = [Ecn.NotEct, Ecn.Ect1, Ecn.Ect0, Ecn.Ce];

    public static TheoryData<string, UdpSocketFamily, string, bool> Paths => new()
    {
        // case, socket family, destination, use recvmmsg/sendmmsg
        { "IPv4 127.0.0.1", UdpSocketFamily.IPv4Only, "127.0.0.1", true },
        { "IPv6 ::1", UdpSocketFamily.DualStack, "::1", true },
        { "dual-stack to IPv4-mapped", UdpSocketFamily.DualStack, "::ffff:127.0.0.1", true },
        { "IPv4, one sendmsg/recvmsg per datagram", UdpSocketFamily.IPv4Only, "127.0.0.1", false },
        { "IPv6, one sendmsg/recvmsg per datagram", UdpSocketFamily.DualStack, "::1", false },
        { "IPv4-mapped, one sendmsg/recvmsg per datagram", UdpSocketFamily.DualStack, "::ffff:127.0.0.1", false },
    };

    [Theory]
    [MemberData(nameof(Paths))]
    public void Mixed_batch_keeps_each_datagrams_codepoint_and_source(string path, UdpSocketFamily family, string destination, bool useMmsg)
    {
        var pool = new PacketBufferPool(preallocate: 128);
        var options = new UdpBatchSocketOptions { Family = family, UseMmsg = useMmsg };
        using var receiver = new LinuxUdpSocket(options);
        using var sender = new LinuxUdpSocket(options);
        Assert.NotEqual(0, receiver.LocalPort);
        Assert.Equal(family == UdpSocketFamily.DualStack, receiver.IsIPv6);

        // 40 datagrams cycling through all four codepoints, so neighbours always differ.
        const int Count = 40;
        var datagrams = new PacketBuffer[Count];
        UdpEndpoint target = UdpTestKit.Endpoint(destination, receiver.LocalPort);
        for (int i = 0; i < Count; i++)
        {
            datagrams[i] = UdpTestKit.Datagram(pool, i, 100 + i, AllCodepoints[i % 4], target);
        }
        int sent = sender.SendBatch(datagrams);
        foreach (var datagram in datagrams)
        {
            datagram.Return();
        }
        Assert.Equal(Count, sent);
        Assert.Equal(0, sender.SendErrors + sender.SendDropped);

        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, Count);
        // The source as the receiver sees it: ::1 stays IPv6; 127.0.0.1 (also via a mapped
        // destination) arrives as IPv4, held in the IPv4-mapped form by UdpEndpoint.
        string source = destination == "::1" ? "::1" : "127.0.0.1";
        UdpEndpoint expectedSource = UdpTestKit.Endpoint(source, sender.LocalPort);
        var seen = new bool[Count];
        foreach (var buffer in received)
        {
            int number = UdpTestKit.NumberOf(buffer);
            Assert.Equal(100 + number, buffer.Length);
            Assert.Equal(PacketBuffer.Headroom, buffer.Offset);
            Assert.True(AllCodepoints[number % 4] == buffer.Ecn, $"{path}: datagram {number} sent as {AllCodepoints[number % 4]} arrived as {buffer.Ecn}");
            Assert.Equal(expectedSource, buffer.Endpoint);
            Assert.Equal(source == "::1", !buffer.Endpoint.IsIPv4);
            seen[number] = true;
            buffer.Return();
        }
        Assert.All(seen, Assert.True);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void One_dual_stack_batch_to_IPv6_and_IPv4_mapped_destinations_uses_the_right_control_message_for_each()
    {
        var pool = new PacketBufferPool(preallocate: 128);
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions());
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions());
        UdpEndpoint v6 = UdpTestKit.Endpoint("::1", receiver.LocalPort);
        UdpEndpoint mapped = UdpTestKit.Endpoint("::ffff:127.0.0.1", receiver.LocalPort);

        const int Count = 16;
        var datagrams = new PacketBuffer[Count];
        for (int i = 0; i < Count; i++)
        {
            // Codepoint changes every datagram, family every second one: all 8 combinations twice.
            datagrams[i] = UdpTestKit.Datagram(pool, i, 64, AllCodepoints[(i / 2) % 4], i % 2 == 0 ? v6 : mapped);
        }
        Assert.Equal(Count, sender.SendBatch(datagrams));
        foreach (var datagram in datagrams)
        {
            datagram.Return();
        }

        foreach (var buffer in UdpTestKit.ReceiveExactly(receiver, pool, Count))
        {
            int number = UdpTestKit.NumberOf(buffer);
            Assert.Equal(AllCodepoints[(number / 2) % 4], buffer.Ecn);
            Assert.Equal(number % 2 == 0 ? UdpTestKit.Endpoint("::1", sender.LocalPort) : UdpTestKit.Endpoint("127.0.0.1", sender.LocalPort), buffer.Endpoint);
            buffer.Return();
        }
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void A_batch_larger_than_the_socket_batch_size_is_sent_in_several_calls()
    {
        var pool = new PacketBufferPool(preallocate: 256);
        var options = new UdpBatchSocketOptions { BatchSize = 8 };
        using var receiver = new LinuxUdpSocket(options);
        using var sender = new LinuxUdpSocket(options);
        UdpEndpoint target = UdpTestKit.Endpoint("::1", receiver.LocalPort);
        const int Count = 50;
        var datagrams = new PacketBuffer[Count];
        for (int i = 0; i < Count; i++)
        {
            datagrams[i] = UdpTestKit.Datagram(pool, i, 1452, AllCodepoints[i % 4], target);
        }
        Assert.Equal(Count, sender.SendBatch(datagrams));
        foreach (var datagram in datagrams)
        {
            datagram.Return();
        }
        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, Count);
        Assert.Equal(Count, received.Count);
        foreach (var buffer in received)
        {
            int number = UdpTestKit.NumberOf(buffer);
            Assert.Equal(1452, buffer.Length);
            Assert.Equal(AllCodepoints[number % 4], buffer.Ecn);
            buffer.Return();
        }
        Assert.Equal(0, pool.Outstanding);
    }
}
