using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Xunit.Abstractions;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// A send the kernel refuses with an errno the socket has no rule for (ENOMEM here, made by a seccomp
/// filter on the sending thread) loses that message only: it is counted in SendErrors and named in
/// the caller's unsent slots, the datagrams sent before it in the same batch stay counted as sent,
/// the rest of the batch goes out, and so does the next batch. SendBatch threw UdpSocketException for
/// any errno outside its list, which stopped the tunnel (as wireguard-go never does for a send) and
/// lost the batch's counts: the datagrams the call had already sent were counted nowhere, and the
/// unsent ones stayed on their peers' transfer. Only errnos that mean the descriptor itself is
/// unusable still throw.
/// </summary>
public sealed class UdpUnknownSendErrnoTests(ITestOutputHelper output)
{
    private const int EINVAL = 22, ENOMEM = 12;

    [Fact]
    public void An_unknown_errno_from_sendmmsg_loses_its_message_only_and_the_batch_and_the_next_go_on()
    {
        var pool = new PacketBufferPool();
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGro = false });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGso = false });
        UdpEndpoint good = UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort);
        UdpEndpoint refused = UdpTestKit.Endpoint("127.0.0.1", 0); // port 0: EINVAL, a known per-datagram refusal
        // sendmmsg(6) sends 0 and 1 and stops at 2; sendmmsg(4) is 2's EINVAL; sendmmsg(3), from 3 on,
        // is failed by the filter with ENOMEM; sendmmsg(2) sends 4 and 5.
        PacketBuffer[] batch = [.. Enumerable.Range(0, 6).Select(i => UdpTestKit.Datagram(pool, i, 100, Ecn.Ect0, i == 2 ? refused : good))];
        var unsent = new int[batch.Length];
        int sent = -1;
        Exception? thrown = null;
        SyscallErrnoInjection.Run(SyscallErrnoInjection.Call.SendMmsgOfLength, ENOMEM, () =>
        {
            try
            {
                sent = sender.SendBatch(batch, unsent);
            }
            catch (UdpSocketException e)
            {
                thrown = e;
            }
        }, vlen: 3);
        UdpGsoGroLoopbackTests.ReturnAll(batch);
        Assert.True(thrown is null, $"SendBatch threw: {thrown?.Message}");
        Assert.Equal(4, sent);
        Assert.Equal([0, 0, EINVAL, ENOMEM, 0, 0], unsent);
        Assert.Equal(2, sender.SendErrors);
        Assert.Equal(0, sender.SendDropped);
        Assert.Equal(ENOMEM, sender.LastSendErrno);
        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, 4);
        Assert.Equal([0, 1, 4, 5], received.Select(UdpTestKit.NumberOf));
        UdpGsoGroLoopbackTests.ReturnAll(received);

        AssertNextBatchGoesOut(pool, sender, receiver, good);
    }

    /// <param name="gso">True: the datagrams form one GSO send, refused (EINVAL, port 0) and retried one by one with sendmsg; false: sendmsg in a loop (no sendmmsg).</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_unknown_errno_from_sendmsg_loses_its_datagram_only(bool gso)
    {
        var pool = new PacketBufferPool();
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGro = false });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGso = gso, UseMmsg = gso });
        Assert.Equal(gso, sender.GsoEnabled);
        UdpEndpoint to = UdpTestKit.Endpoint("127.0.0.1", gso ? 0 : receiver.LocalPort);
        PacketBuffer[] batch = [.. Enumerable.Range(0, 3).Select(i => UdpTestKit.Datagram(pool, i, 300, Ecn.Ect1, to))];
        var unsent = new int[batch.Length];
        int sent = -1;
        Exception? thrown = null;
        SyscallErrnoInjection.Run(SyscallErrnoInjection.Call.SendMsg, ENOMEM, () =>
        {
            try
            {
                sent = sender.SendBatch(batch, unsent);
            }
            catch (UdpSocketException e)
            {
                thrown = e;
            }
        });
        UdpGsoGroLoopbackTests.ReturnAll(batch);
        output.WriteLine($"GSO refusals {sender.GsoRefused}, last errno {sender.LastSendErrno}");
        Assert.True(thrown is null, $"SendBatch threw: {thrown?.Message}");
        Assert.Equal(0, sent);
        Assert.Equal([ENOMEM, ENOMEM, ENOMEM], unsent);
        Assert.Equal(3, sender.SendErrors);
        Assert.Equal(gso ? 1 : 0, sender.GsoRefused);

        AssertNextBatchGoesOut(pool, sender, receiver, UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort));
    }

    private static void AssertNextBatchGoesOut(PacketBufferPool pool, LinuxUdpSocket sender, LinuxUdpSocket receiver, UdpEndpoint to)
    {
        long errors = sender.SendErrors;
        PacketBuffer[] next = [.. Enumerable.Range(10, 3).Select(i => UdpTestKit.Datagram(pool, i, 100, Ecn.Ect0, to))];
        Assert.Equal(3, sender.SendBatch(next));
        UdpGsoGroLoopbackTests.ReturnAll(next);
        Assert.Equal(errors, sender.SendErrors);
        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, 3);
        Assert.Equal([10, 11, 12], received.Select(UdpTestKit.NumberOf));
        UdpGsoGroLoopbackTests.ReturnAll(received);
        Assert.Equal(0, pool.Outstanding);
    }
}
