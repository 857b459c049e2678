using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Packets;
using Firezone.Actors.Native;
using Tmds.Linux;

namespace Firezone.Actors.Benchmarks;

/// <summary>
/// Reading a bulk TCP stream out of a TUN device, with and without IFF_VNET_HDR offloads, in
/// alternating rounds. A socket in a network namespace sends to an address routed into the device;
/// this program plays the remote host (answers the SYN, ACKs each batch) and reads with ReadBatch
/// into 64 pooled buffers, as the TUN reader actor does. Reports Gbit/s and the process's CPU-seconds
/// per GB (sender's kernel TCP work included, as it runs on this process's thread).
///
///     dotnet run -c Release --project benchmarks/Benchmarks -- tun-read [rounds, default 3] [MiB per round, default 512]
/// </summary>
public static unsafe class TunOffloadThroughput
{
    private const int Mtu = 1420;
    private static readonly byte[] Local = [10, 231, 0, 1];
    private static readonly byte[] Remote = [10, 232, 0, 7];

    public static void Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3;
        int mebibytes = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 512;
        var gbps = new List<double>[] { [], [] };
        var cpu = new List<double>[] { [], [] };
        for (int round = 0; round < rounds; round++)
        {
            foreach (bool offloads in new[] { true, false })
            {
                double rate, cpuPerGb;
                long superPackets;
                try
                {
                    (rate, cpuPerGb, superPackets) = Measure(offloads, mebibytes);
                }
                catch (TimeoutException e)
                {
                    // This toy receiver keeps no out-of-order data and has no SACK: after drops at the
                    // TUN queue the sender recovers one segment per (backed-off) RTO.
                    Console.WriteLine($"round {round + 1} {(offloads ? "offloads" : "plain   ")}: {e.Message}");
                    continue;
                }
                int k = offloads ? 0 : 1;
                gbps[k].Add(rate);
                cpu[k].Add(cpuPerGb);
                Console.WriteLine($"round {round + 1} {(offloads ? "offloads" : "plain   ")}: {rate:F2} Gbit/s, {cpuPerGb:F2} CPU-s/GB, {superPackets} super-packets");
            }
        }
        Console.WriteLine($"median offloads: {Median(gbps[0]):F2} Gbit/s {Median(cpu[0]):F2} CPU-s/GB; " +
            $"plain: {Median(gbps[1]):F2} Gbit/s {Median(cpu[1]):F2} CPU-s/GB; ratio {Median(gbps[0]) / Median(gbps[1]):F2}x");
    }

    private static double Median(List<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }
        values.Sort();
        return values[values.Count / 2];
    }

    private static (double Gbps, double CpuPerGb, long SuperPackets) Measure(bool offloads, int mebibytes)
    {
        string suffix = Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();
        string ns = "fzb" + suffix;
        string name = "fzb" + suffix;
        Ip("netns", "add", ns);
        try
        {
            Ip("-n", ns, "link", "set", "lo", "up");
            using LinuxTunDevice tun = Inside(ns, () => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = Mtu, Offloads = offloads }));
            // A longer queue than TUN's 500 for both modes: this toy receiver keeps no out-of-order data
            // and no SACK, so a burst of drops would leave the sender in RTO backoff for seconds.
            Ip("-n", ns, "link", "set", "dev", name, "txqueuelen", "10000");
            Ip("-n", ns, "addr", "add", "10.231.0.1/24", "dev", name);
            Ip("-n", ns, "route", "add", "10.232.0.0/24", "dev", name);
            using Socket client = Inside(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            using var deadline = new Timer(_ => tun.WakeReader(), null, TimeSpan.FromSeconds(20), Timeout.InfiniteTimeSpan);
            var pool = new PacketBufferPool(preallocate: 128);
            var batch = new PacketBuffer[64];
            for (int i = 0; i < batch.Length; i++)
            {
                batch[i] = pool.Rent();
            }
            PacketBuffer ack = pool.Rent();
            PacketBuffer[] ackBatch = [ack];

            client.Blocking = false;
            try
            {
                client.Connect(new IPEndPoint(new IPAddress(Remote), 5000));
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
            {
            }
            ushort port = 0;
            uint expected = 0;
            while (port == 0)
            {
                int n = tun.ReadBatch(batch);
                if (n == 0)
                {
                    throw new TimeoutException("no SYN");
                }
                for (int i = 0; i < n; i++)
                {
                    Span<byte> p = batch[i].Data;
                    if (p.Length >= 40 && p[0] == 0x45 && p[9] == 6 && (p[33] & 0x02) != 0)
                    {
                        port = BinaryPrimitives.ReadUInt16BigEndian(p[20..]);
                        expected = BinaryPrimitives.ReadUInt32BigEndian(p[24..]) + 1;
                    }
                }
            }
            const uint serverIsn = 77;
            WriteTcp(tun, ack, ackBatch, port, serverIsn, expected, 0x12, [2, 4, (Mtu - 40) >> 8, (Mtu - 40) & 0xFF, 1, 3, 3, 7]);
            if (!client.Poll(TimeSpan.FromSeconds(10), SelectMode.SelectWrite))
            {
                throw new TimeoutException("connect");
            }
            client.Blocking = true;

            long total = (long)mebibytes << 20;
            var chunk = new byte[1 << 20];
            var sender = new Thread(() =>
            {
                try
                {
                    for (long sent = 0; sent < total; sent += chunk.Length)
                    {
                        client.Send(chunk);
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // closed at the end of the round
                }
            });
            TimeSpan cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            sender.Start();
            long received = 0;
            uint lastSequence = 0;
            int lastPayload = 0;
            int packetsAfterStall = 0;
            while (received < total)
            {
                int n = tun.ReadBatch(batch);
                if (n == 0)
                {
                    if (Environment.GetEnvironmentVariable("TUN_READ_DEBUG") is not null)
                    {
                        var ss = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", ns, "ss", "-tin"]) { RedirectStandardOutput = true })!;
                        Console.WriteLine(ss.StandardOutput.ReadToEnd());
                        var link = Process.Start(new ProcessStartInfo("ip", ["-n", ns, "-s", "link", "show", name]) { RedirectStandardOutput = true })!;
                        Console.WriteLine(link.StandardOutput.ReadToEnd());
                    }
                    throw new TimeoutException($"stalled after {received} bytes; expecting {expected}, last seen {lastSequence}+{lastPayload}, {tun.ReadDropped} dropped, {tun.WriteErrors} write errors (errno {tun.LastWriteErrno}), {packetsAfterStall} packets since the last progress");
                }
                for (int i = 0; i < n; i++)
                {
                    Span<byte> p = batch[i].Data;
                    if (p.Length > 40 && p[0] == 0x45 && p[9] == 6 && BinaryPrimitives.ReadUInt16BigEndian(p[20..]) == port)
                    {
                        int payload = p.Length - 20 - (p[32] >> 4) * 4;
                        packetsAfterStall++;
                        lastSequence = BinaryPrimitives.ReadUInt32BigEndian(p[24..]);
                        lastPayload = payload;
                        // In order, or a retransmission that overlaps what we have (other boundaries).
                        uint sequence = BinaryPrimitives.ReadUInt32BigEndian(p[24..]);
                        int ahead = (int)(sequence + (uint)payload - expected);
                        if (payload > 0 && (int)(sequence - expected) <= 0 && ahead > 0)
                        {
                            expected += (uint)ahead;
                            received += ahead;
                            packetsAfterStall = -1;
                        }
                    }
                    batch[i].Reset();
                }
                WriteTcp(tun, ack, ackBatch, port, serverIsn + 1, expected, 0x10, []);
            }
            clock.Stop();
            TimeSpan cpuUsed = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
            client.Close();
            sender.Join(TimeSpan.FromSeconds(10));
            double gb = received / 1e9;
            return (gb * 8 / clock.Elapsed.TotalSeconds, cpuUsed.TotalSeconds / gb, tun.SuperPacketsRead);
        }
        finally
        {
            Ip("netns", "del", ns);
        }
    }

    /// <summary>A TCP segment from the remote end (no payload), window 65535 scaled by 2^7.</summary>
    private static void WriteTcp(LinuxTunDevice tun, PacketBuffer buffer, PacketBuffer[] batch, ushort port, uint sequence, uint ack, byte flags, ReadOnlySpan<byte> options)
    {
        int length = 40 + options.Length;
        buffer.Reset();
        buffer.SetData(PacketBuffer.Headroom, length);
        Span<byte> p = buffer.Data;
        p.Clear();
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p[2..], (ushort)length);
        p[6] = 0x40;
        p[8] = 64;
        p[9] = 6;
        Remote.CopyTo(p[12..]);
        Local.CopyTo(p[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(p[10..], Ipv4Checksum.Compute(p[..20]));
        BinaryPrimitives.WriteUInt16BigEndian(p[20..], 5000);
        BinaryPrimitives.WriteUInt16BigEndian(p[22..], port);
        BinaryPrimitives.WriteUInt32BigEndian(p[24..], sequence);
        BinaryPrimitives.WriteUInt32BigEndian(p[28..], ack);
        p[32] = (byte)(((20 + options.Length) / 4) << 4);
        p[33] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(p[34..], 65535);
        options.CopyTo(p[40..]);
        ushort sum = Firezone.Actors.Engine.Offload.InternetChecksum.PseudoHeaderSum(p.Slice(12, 4), p.Slice(16, 4), 6, length - 20);
        BinaryPrimitives.WriteUInt16BigEndian(p[36..], Firezone.Actors.Engine.Offload.InternetChecksum.Finish(
            Firezone.Actors.Engine.Offload.InternetChecksum.Sum(p[20..], sum)));
        tun.WriteBatch(batch);
    }

    private static void Ip(params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo("ip", arguments) { RedirectStandardError = true })!;
        if (!process.WaitForExit(20_000) || process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', arguments)} failed: {process.StandardError.ReadToEnd()}");
        }
    }

    /// <summary>Runs on a thread that joined the namespace (setns affects the calling thread only).</summary>
    private static T Inside<T>(string ns, Func<T> action)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                int fd;
                fixed (byte* path = System.Text.Encoding.UTF8.GetBytes($"/var/run/netns/{ns}\0"))
                {
                    fd = LibC.open(path, LibC.O_RDONLY | LibC.O_CLOEXEC);
                }
                if (fd < 0 || LibC.setns(fd, LibC.CLONE_NEWNET) < 0)
                {
                    throw new IOException($"entering namespace {ns}: errno {LibC.errno}");
                }
                LibC.close(fd);
                result = action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            throw failure;
        }
        return result;
    }
}
