using System.Diagnostics;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;
using Xunit.Abstractions;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// A receive the kernel refuses with an errno that does not mean the socket is gone (ENOMEM here,
/// made by a seccomp filter on the receiving thread) reads nothing and is counted in ReceiveErrors;
/// the datagrams stay queued and the next read takes them. TryReceiveBatch threw UdpSocketException
/// for any errno outside its short list (EAGAIN, EINTR, the ICMP errors), which stopped the tunnel
/// ("UDP socket failed"). A refusal that lasts must not make the reader spin: after one, the next
/// wait pauses first (LinuxUdpSocket.ReceiveErrors.cs). The errnos that mean the call cannot work on
/// this descriptor still throw.
/// </summary>
public sealed class UdpUnknownReceiveErrnoTests(ITestOutputHelper output)
{
    private const int EBADF = 9, ENOMEM = 12, EFAULT = 14, EINVAL = 22, ENOTSOCK = 88;

    /// <param name="mmsg">recvmmsg (true) or recvmsg in a loop.</param>
    /// <param name="gro">UDP_GRO on: the reads go into the GRO slots.</param>
    [Theory]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(false, true)]
    public void An_unknown_errno_from_a_receive_is_counted_and_the_datagrams_still_arrive(bool mmsg, bool gro)
    {
        var pool = new PacketBufferPool();
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGro = gro, UseMmsg = mmsg });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGso = false });
        SendNumbered(pool, sender, receiver, 0, 3);
        PacketBuffer[] buffers = Rent(pool, 8);
        int read = 0;
        SyscallErrnoInjection.Run(mmsg ? SyscallErrnoInjection.Call.RecvMmsg : SyscallErrnoInjection.Call.RecvMsg, ENOMEM, () =>
        {
            for (int i = 0; i < 3; i++)
            {
                Assert.True(receiver.WaitReadable(5000), "the datagrams are queued: the socket is readable");
                read += receiver.TryReceiveBatch(buffers);
            }
        });
        UdpGsoGroLoopbackTests.ReturnAll(buffers);
        Assert.Equal(0, read);
        Assert.Equal(3, receiver.ReceiveErrors);
        Assert.Equal(ENOMEM, receiver.LastReceiveErrno);

        // The refused reads took nothing: all three arrive, and later ones too.
        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, 3);
        Assert.Equal([0, 1, 2], received.Select(UdpTestKit.NumberOf));
        UdpGsoGroLoopbackTests.ReturnAll(received);
        SendNumbered(pool, sender, receiver, 10, 2);
        received = UdpTestKit.ReceiveExactly(receiver, pool, 2);
        Assert.Equal([10, 11], received.Select(UdpTestKit.NumberOf));
        UdpGsoGroLoopbackTests.ReturnAll(received);
        Assert.Equal(3, receiver.ReceiveErrors);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void A_receive_error_that_lasts_makes_the_reader_pause_not_spin_and_a_stop_is_not_delayed()
    {
        const int ForMs = 500;
        const int StopPhasePauseMs = 10_000;
        var pool = new PacketBufferPool();
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGso = false });
        SendNumbered(pool, sender, receiver, 0, 1);
        PacketBuffer[] buffers = Rent(pool, 8);
        long stopTookMs = -1;
        SyscallErrnoInjection.Run(SyscallErrnoInjection.Call.RecvMmsg, ENOMEM, () =>
        {
            // A reader's loop (BatchReaderThread, ReceiveBatch): wait, read, again.
            var clock = Stopwatch.StartNew();
            while (clock.ElapsedMilliseconds < ForMs)
            {
                if (receiver.WaitReadable(100))
                {
                    Assert.Equal(0, receiver.TryReceiveBatch(buffers));
                }
            }
            // The last read failed, so the next wait pauses: a stop must end it at once. The pause
            // owed is made 10 s long for this wait: a wait that sat it out took 10 ms with the
            // real pause, where the bound (half of it, 5 ms) failed a correct socket whenever this
            // thread was descheduled for a few ms between the wake and the clock's read (2 cores,
            // other test classes alongside). Now the defect takes 10 s and the bound is 5 s.
            receiver.ReceiveErrorPause = StopPhasePauseMs;
            receiver.WakeReceiver();
            clock.Restart();
            Assert.False(receiver.WaitReadable(-1));
            stopTookMs = clock.ElapsedMilliseconds;
            receiver.ReceiveErrorPause = LinuxUdpSocket.ReceiveErrorPauseMs; // the pause is still owed: the read below sits out the real one
        });
        UdpGsoGroLoopbackTests.ReturnAll(buffers);
        output.WriteLine($"{receiver.ReceiveErrors} refused reads in {ForMs} ms; the stop took {stopTookMs} ms");
        Assert.InRange(receiver.ReceiveErrors, 1, ForMs / LinuxUdpSocket.ReceiveErrorPauseMs + 5);
        Assert.InRange(stopTookMs, 0, StopPhasePauseMs / 2);

        receiver.RearmAfterStop();
        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, 1);
        Assert.Equal([0], received.Select(UdpTestKit.NumberOf));
        UdpGsoGroLoopbackTests.ReturnAll(received);
        Assert.Equal(0, pool.Outstanding);
    }

    /// <summary>
    /// Reads made between a refused read and the reader's next wait (a partner thread's reply
    /// polling calls TryReceiveBatch without waiting) make no call: the pause is owed first.
    /// Before, each made a recvmmsg the kernel refused again (a review helper counted 1552
    /// refusals in 10 s where the pause allows about 1000).
    /// </summary>
    [Fact]
    public void Reads_before_the_owed_pause_make_no_call()
    {
        var pool = new PacketBufferPool();
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGso = false });
        SendNumbered(pool, sender, receiver, 0, 1);
        PacketBuffer[] buffers = Rent(pool, 8);
        SyscallErrnoInjection.Run(SyscallErrnoInjection.Call.RecvMmsg, ENOMEM, () =>
        {
            Assert.True(receiver.WaitReadable(5000));
            Assert.Equal(0, receiver.TryReceiveBatch(buffers)); // refused: a pause is owed
            for (int i = 0; i < 5; i++)
            {
                Assert.Equal(0, receiver.TryReceiveBatch(buffers)); // as a polling partner reads
            }
        });
        UdpGsoGroLoopbackTests.ReturnAll(buffers);
        Assert.Equal(1, receiver.ReceiveErrors);

        // The reader's next wait pauses, and the datagram, still queued, arrives.
        List<PacketBuffer> received = UdpTestKit.ReceiveExactly(receiver, pool, 1);
        Assert.Equal([0], received.Select(UdpTestKit.NumberOf));
        UdpGsoGroLoopbackTests.ReturnAll(received);
        Assert.Equal(0, pool.Outstanding);
    }

    /// <summary>
    /// EBADF, ENOTSOCK: the descriptor is not a socket of ours any more; EFAULT, EINVAL: the call's own
    /// arguments are wrong (a receive names no destination, so unlike a send's EINVAL nothing from
    /// the network gives it). Every later read would fail the same way: the tunnel stops with it.
    /// </summary>
    [Theory]
    [InlineData(EBADF)]
    [InlineData(ENOTSOCK)]
    [InlineData(EFAULT)]
    [InlineData(EINVAL)]
    public void Errnos_that_mean_the_socket_cannot_receive_still_throw(int errno)
    {
        var pool = new PacketBufferPool();
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGso = false });
        SendNumbered(pool, sender, receiver, 0, 1);
        PacketBuffer[] buffers = Rent(pool, 8);
        UdpSocketException? thrown = null;
        SyscallErrnoInjection.Run(SyscallErrnoInjection.Call.RecvMmsg, errno, () =>
        {
            Assert.True(receiver.WaitReadable(5000));
            thrown = Assert.Throws<UdpSocketException>(() => receiver.TryReceiveBatch(buffers));
        });
        UdpGsoGroLoopbackTests.ReturnAll(buffers);
        Assert.Equal(errno, thrown!.Errno);
        Assert.Equal(0, receiver.ReceiveErrors);
        Assert.Equal(0, pool.Outstanding);
    }

    private static void SendNumbered(PacketBufferPool pool, LinuxUdpSocket sender, LinuxUdpSocket receiver, int first, int count)
    {
        UdpEndpoint to = UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort);
        PacketBuffer[] batch = [.. Enumerable.Range(first, count).Select(i => UdpTestKit.Datagram(pool, i, 100, Ecn.Ect0, to))];
        Assert.Equal(count, sender.SendBatch(batch));
        UdpGsoGroLoopbackTests.ReturnAll(batch);
    }

    private static PacketBuffer[] Rent(PacketBufferPool pool, int count) => [.. Enumerable.Range(0, count).Select(_ => pool.Rent())];
}
