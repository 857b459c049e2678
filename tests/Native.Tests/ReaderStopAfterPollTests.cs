using System.Diagnostics;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// A stop (<see cref="LinuxUdpSocket.WakeReceiver"/>) that comes after the reader's poll returned
/// but before it read: the reader ends without reading. Found by CI
/// (StuckReaderRebuildTests.An_mtu_rebuild_whose_descriptor_duplicate_fails_once...): the old
/// tunnel's reader, held at poll's return, ran on after the rebuild and took the datagrams meant for
/// the new tunnel on the shared socket, a handshake answer among them, and the pings waited for the
/// next one 5 s later. strace holds the reader at the return of its poll (delay injection), as
/// Host.Tests' ThreadHold does.
/// </summary>
public sealed class ReaderStopAfterPollTests
{
    [Fact]
    public void A_stop_after_poll_returned_ends_the_reader_without_taking_the_datagram()
    {
        var pool = new PacketBufferPool();
        using var receiver = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only });
        using var sender = new LinuxUdpSocket(new UdpBatchSocketOptions { Family = UdpSocketFamily.IPv4Only, UseGso = false });
        int tid = 0, received = -1;
        using var inside = new ManualResetEventSlim();
        var batch = new PacketBuffer[8];
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = pool.Rent();
        }
        var reader = new Thread(() =>
        {
            tid = int.Parse(Path.GetFileName(new FileInfo("/proc/thread-self").LinkTarget!), System.Globalization.CultureInfo.InvariantCulture); // "PID/task/TID"
            inside.Set();
            received = receiver.ReceiveBatch(batch);
        }) { IsBackground = true, Name = "held-reader" };
        reader.Start();
        inside.Wait();
        using var strace = Process.Start(new ProcessStartInfo("strace", ["-q", "-o", "/dev/null", "-p", tid.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-e", "trace=poll,restart_syscall", "-e", "inject=poll,restart_syscall:delay_exit=5000000"])
        {
            RedirectStandardError = true,
        })!;
        try
        {
            for (var waited = Stopwatch.StartNew(); File.ReadAllText($"/proc/self/task/{tid}/status").Contains("TracerPid:\t0\n", StringComparison.Ordinal); Thread.Sleep(20))
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(10), "strace did not attach");
            }
            // The reader is in its poll (or about to be): the datagram makes poll return, and
            // strace holds the return for 5 s, during which the stop comes. (It held it 1.5 s: a test
            // thread descheduled for 1.2 s between the send and the stop, on a loaded 2-core machine,
            // let a correct reader take the datagram before the stop came.)
            Thread.Sleep(200);
            var datagram = UdpTestKit.Datagram(pool, 1, 100, Ecn.NotEct, UdpTestKit.Endpoint("127.0.0.1", receiver.LocalPort));
            Assert.Equal(1, sender.SendBatch([datagram]));
            datagram.Return();
            Thread.Sleep(300);
            receiver.WakeReceiver();
            Assert.True(reader.Join(TimeSpan.FromSeconds(20)), "the reader did not end");
        }
        finally
        {
            if (!strace.HasExited)
            {
                strace.Kill();
            }
            strace.WaitForExit();
        }
        foreach (var buffer in batch)
        {
            buffer.Return();
        }
        Assert.Equal(0, received);
        // The datagram is still queued for whoever reads the socket next (the new tunnel's reader).
        receiver.RearmAfterStop();
        var left = UdpTestKit.ReceiveExactly(receiver, pool, 1, TimeSpan.FromSeconds(5))!;
        Assert.Equal(1, UdpTestKit.NumberOf(left[0]));
        left[0].Return();
    }
}
