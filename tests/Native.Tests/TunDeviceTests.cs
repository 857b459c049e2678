using System.Diagnostics;
using System.Net;
using Firezone.Actors.Engine.Buffers;
using Xunit.Abstractions;

namespace Firezone.Actors.Native.Tests;

/// <summary>A real TUN device inside a network namespace the test creates and always removes.</summary>
public sealed class TunDeviceTests(ITestOutputHelper output)
{
    [Fact]
    public void A_ping_routed_into_the_device_is_read_and_the_reply_written_back_reaches_ping()
    {
        using var ns = new NetworkNamespace();
        string name = "fzt" + NetworkNamespace.UniqueSuffix();
        var pool = new PacketBufferPool();
        LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = 1420 }));
        try
        {
            Assert.Equal(name, tun.Name);
            Assert.Equal(1420, tun.Mtu);
            string link = Command.Check("ip", "-n", ns.Name, "link", "show", "dev", name);
            Assert.Contains("mtu 1420", link);
            Assert.Contains(",UP", link);

            Command.Check("ip", "-n", ns.Name, "addr", "add", "10.201.0.1/24", "dev", name);
            Command.Check("ip", "-n", ns.Name, "route", "add", "10.202.0.0/24", "dev", name);
            byte[] target = IPAddress.Parse("10.202.0.7").GetAddressBytes();

            using Process ping = Command.Start("ip", "netns", "exec", ns.Name, "ping", "-n", "-c1", "-W5", "10.202.0.7");
            try
            {
                // Read until the echo request shows up (IPv6 router solicitations may come first); a
                // timer wakes the reader after 10 s so a missing packet fails instead of hanging.
                using var deadline = new Timer(_ => tun.WakeReader(), null, TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan);
                var batch = new PacketBuffer[8];
                PacketBuffer? request = null;
                int skipped = 0;
                while (request is null)
                {
                    for (int i = 0; i < batch.Length; i++)
                    {
                        batch[i] = pool.Rent();
                    }
                    int count = tun.ReadBatch(batch);
                    for (int i = 0; i < batch.Length; i++)
                    {
                        if (i < count && request is null && IcmpEcho.IsEchoRequestTo(batch[i].Data, target))
                        {
                            request = batch[i];
                            continue;
                        }
                        if (i < count)
                        {
                            skipped++;
                        }
                        batch[i].Return();
                    }
                    Assert.True(count > 0, "no ICMP echo request arrived on the TUN device within 10 s");
                }
                output.WriteLine($"echo request of {request.Length} bytes read (skipped {skipped} other packets)");
                Assert.Equal(PacketBuffer.Headroom, request.Offset);

                IcmpEcho.TurnIntoReply(request.Data);
                tun.WriteBatch([request]);
                request.Return();
                Assert.Equal(0, tun.WriteErrors);

                var (exitCode, pingOutput) = Command.Finish(ping, TimeSpan.FromSeconds(15));
                output.WriteLine(pingOutput);
                Assert.True(exitCode == 0, $"ping exited with {exitCode}: {pingOutput}");
                Assert.Contains("1 received", pingOutput);
            }
            finally
            {
                if (!ping.HasExited)
                {
                    ping.Kill(entireProcessTree: true);
                }
            }
        }
        finally
        {
            tun.Dispose();
        }
        Assert.Equal(0, pool.Outstanding);
        // A non-persistent TUN device goes away with its last descriptor.
        var (code, text) = Command.Run("ip", "-n", ns.Name, "link", "show", "dev", name);
        Assert.True(code != 0, $"{name} still exists after Dispose: {text}");
    }

    [Fact]
    public void An_echo_request_written_to_the_device_is_answered_by_the_kernel_and_read_back_without_blocking()
    {
        // The premise of reply polling (BatchReaderThread): the kernel answers a ping to its own
        // address while the write runs, so a non-blocking read right after the write finds it.
        using var ns = new NetworkNamespace();
        string name = "fzt" + NetworkNamespace.UniqueSuffix();
        var pool = new PacketBufferPool();
        LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = 1420 }));
        var buffers = new PacketBuffer[8];
        try
        {
            Command.Check("ip", "-n", ns.Name, "addr", "add", "10.203.0.1/24", "dev", name);
            byte[] self = [10, 203, 0, 1], far = [10, 203, 0, 2];
            var request = pool.Rent();
            request.Length = IcmpEcho.WriteRequest(request.Writable, far, self, sequence: 77);
            tun.WriteBatch([request]);
            request.Return();
            Assert.Equal(0, tun.WriteErrors);

            int reads = 0;
            bool answered = false;
            while (!answered)
            {
                for (int i = 0; i < buffers.Length; i++)
                {
                    buffers[i] = pool.Rent();
                }
                reads++;
                int count = tun.TryReadBatch(buffers);
                for (int i = 0; i < buffers.Length; i++)
                {
                    answered |= i < count && IcmpEcho.IsEchoReplyTo(buffers[i].Data, far, 77);
                    buffers[i].Return();
                }
                Assert.True(answered || count > 0 || tun.WaitReadable(5000), "the kernel's echo reply did not arrive within 5 s");
            }
            output.WriteLine($"echo reply found by non-blocking read number {reads} after the write");
        }
        finally
        {
            tun.Dispose();
        }
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void A_kernel_chosen_name_is_reported_and_the_device_disappears_on_dispose()
    {
        using var ns = new NetworkNamespace();
        LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions()));
        string name = tun.Name;
        try
        {
            Assert.StartsWith("tun", name);
            Assert.Equal(0, ns.Exec(TimeSpan.FromSeconds(10), "test", "-e", $"/sys/class/net/{name}").ExitCode);
        }
        finally
        {
            tun.Dispose();
        }
        AssertGoneAfterDispose(ns, name);
    }

    /// <summary>
    /// The kernel unregisters the net device when the last reference to the file goes away, which
    /// can trail our close by a moment under load: a process another test forks at that time holds
    /// a copy of every descriptor until its exec closes them (O_CLOEXEC), and unregistering waits
    /// for RTNL, which other tests' namespace changes hold. An immediate check failed once in 20
    /// loaded runs; so poll, bounded.
    /// </summary>
    private static void AssertGoneAfterDispose(NetworkNamespace ns, string name)
    {
        bool gone = false;
        for (int attempt = 0; attempt < 50 && !gone; attempt++)
        {
            gone = Command.Run("ip", "-n", ns.Name, "link", "show", "dev", name).ExitCode != 0;
            if (!gone)
            {
                Thread.Sleep(100);
            }
        }
        Assert.True(gone, $"device {name} still exists 5 s after Dispose");
    }

    [Fact]
    public void Waking_a_blocked_reader_returns_zero_promptly()
    {
        using var ns = new NetworkNamespace();
        var pool = new PacketBufferPool();
        // Not brought up: no IPv6 router solicitations to wake the reader early.
        using LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = "fzt" + NetworkNamespace.UniqueSuffix(), BringUp = false }));
        var buffers = new PacketBuffer[4];
        for (int i = 0; i < buffers.Length; i++)
        {
            buffers[i] = pool.Rent();
        }
        int result = -1;
        var reader = new Thread(() => result = tun.ReadBatch(buffers));
        reader.Start();
        Thread.Sleep(200); // lets the reader block in poll; not part of the measurement
        Assert.True(reader.IsAlive, "the reader should be blocked with nothing to read");
        var stopwatch = Stopwatch.StartNew();
        tun.WakeReader();
        // A hang detector, not a speed check (a loaded machine may deschedule the reader): the figure is logged.
        bool joined = reader.Join(TimeSpan.FromSeconds(10));
        stopwatch.Stop();
        output.WriteLine($"reader returned {stopwatch.Elapsed.TotalMilliseconds:F2} ms after WakeReader");
        Assert.True(joined, "the reader did not return within 10 s of WakeReader");
        Assert.Equal(0, result);
        foreach (var buffer in buffers)
        {
            buffer.Return();
        }
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void Dispose_while_a_reader_is_blocked_wakes_it_and_removes_the_device()
    {
        using var ns = new NetworkNamespace();
        var pool = new PacketBufferPool();
        string name = "fzt" + NetworkNamespace.UniqueSuffix();
        LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, BringUp = false }));
        var buffers = new[] { pool.Rent() };
        int result = -1;
        var reader = new Thread(() => result = tun.ReadBatch(buffers));
        reader.Start();
        Thread.Sleep(200);
        tun.Dispose();
        Assert.True(reader.Join(TimeSpan.FromSeconds(10)), "Dispose did not release the blocked reader");
        Assert.Equal(0, result);
        buffers[0].Return();
        AssertGoneAfterDispose(ns, name);
    }

    [Fact]
    public void A_device_deleted_under_a_reader_is_reported_as_lost()
    {
        using var ns = new NetworkNamespace();
        var pool = new PacketBufferPool();
        string name = "fzt" + NetworkNamespace.UniqueSuffix();
        using LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, BringUp = false }));
        var buffers = new[] { pool.Rent() };
        Exception? failure = null;
        var reader = new Thread(() =>
        {
            try
            {
                tun.ReadBatch(buffers);
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        reader.Start();
        Command.Check("ip", "-n", ns.Name, "link", "del", "dev", name);
        if (!reader.Join(TimeSpan.FromSeconds(5)))
        {
            tun.WakeReader();
            reader.Join(TimeSpan.FromSeconds(1));
            Assert.Fail("the reader did not notice the device was deleted");
        }
        var error = Assert.IsType<TunDeviceException>(failure);
        Assert.Equal($"TUN device {name} is gone (deleted, or its network namespace removed)", error.Message);
        Assert.Equal(77, error.Errno); // EBADFD
        buffers[0].Return();

        // The writer sees the same.
        PacketBuffer packet = pool.Rent();
        packet.SetData(PacketBuffer.Headroom, 20);
        packet.Data[0] = 0x45;
        var writeError = Assert.Throws<TunDeviceException>(() => tun.WriteBatch([packet]));
        Assert.Equal(error.Message, writeError.Message);
        packet.Return();
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void An_existing_persistent_device_is_attached_to_by_name_and_outlives_the_handle()
    {
        using var ns = new NetworkNamespace();
        string name = "fzt" + NetworkNamespace.UniqueSuffix();
        Command.Check("ip", "-n", ns.Name, "tuntap", "add", "dev", name, "mode", "tun");
        LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = 1400 }));
        try
        {
            Assert.Equal(name, tun.Name);
            Assert.Contains("mtu 1400", Command.Check("ip", "-n", ns.Name, "link", "show", "dev", name));
        }
        finally
        {
            tun.Dispose();
        }
        // Persistent (made by ip tuntap): still there after our descriptor closed.
        Assert.Equal(0, Command.Run("ip", "-n", ns.Name, "link", "show", "dev", name).ExitCode);
        Command.Check("ip", "-n", ns.Name, "tuntap", "del", "dev", name, "mode", "tun");
    }

    [Fact]
    public void SetPersistent_keeps_the_device_after_its_descriptor_closes_until_it_is_cleared()
    {
        using var ns = new NetworkNamespace();
        string name = "fzt" + NetworkNamespace.UniqueSuffix();
        try
        {
            LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, BringUp = false }));
            tun.SetPersistent(true);
            tun.Dispose();
            Assert.Equal(0, Command.Run("ip", "-n", ns.Name, "link", "show", "dev", name).ExitCode);

            LinuxTunDevice again = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, BringUp = false }));
            again.SetPersistent(false);
            again.Dispose();
            Assert.NotEqual(0, Command.Run("ip", "-n", ns.Name, "link", "show", "dev", name).ExitCode);
        }
        finally
        {
            Command.Run("ip", "-n", ns.Name, "tuntap", "del", "dev", name, "mode", "tun");
        }
    }
}
