using System.Net;
using System.Net.Sockets;
using Firezone.Actors.Engine.Buffers;
using Xunit.Abstractions;
using static Firezone.Actors.Native.Tests.TunOffloadTcpPackets;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// TUN offloads against the real kernel, inside a network namespace the test creates and removes: the
/// test plays the remote end of a TCP connection through the device, so the kernel's TCP sends TSO
/// super-packets into it and accepts coalesced super-packets from it.
/// </summary>
public sealed class TunOffloadTests(ITestOutputHelper output)
{
    private const int Mtu = 1420;
    private static readonly byte[] Local = [10, 211, 0, 1];
    private static readonly byte[] Remote = [10, 212, 0, 7];

    private static LinuxTunDevice CreateDevice(NetworkNamespace ns)
    {
        string name = "fzo" + NetworkNamespace.UniqueSuffix();
        LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = Mtu, Offloads = true }));
        try
        {
            Command.Check("ip", "-n", ns.Name, "addr", "add", "10.211.0.1/24", "dev", name);
            Command.Check("ip", "-n", ns.Name, "route", "add", "10.212.0.0/24", "dev", name);
            return tun;
        }
        catch
        {
            tun.Dispose();
            throw;
        }
    }

    /// <summary>One ReadBatch; copies of the packets read; all buffers back to the pool. Fails on the deadline's wake.</summary>
    private static List<byte[]> ReadOnce(LinuxTunDevice tun, PacketBufferPool pool, PacketBuffer[] batch)
    {
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = pool.Rent();
        }
        int count = tun.ReadBatch(batch);
        var packets = new List<byte[]>(count);
        for (int i = 0; i < batch.Length; i++)
        {
            if (i < count)
            {
                Assert.Equal(PacketBuffer.Headroom, batch[i].Offset);
                packets.Add(batch[i].Data.ToArray());
            }
            batch[i].Return();
        }
        Assert.True(count > 0, "the TUN device delivered nothing before the deadline");
        return packets;
    }

    private static Tcp ReadUntil(LinuxTunDevice tun, PacketBufferPool pool, PacketBuffer[] batch, Func<Tcp, bool> match)
    {
        while (true)
        {
            foreach (byte[] p in ReadOnce(tun, pool, batch))
            {
                if (Parse(p) is Tcp t && match(t))
                {
                    Assert.True(ChecksumsValid(p));
                    return t;
                }
            }
        }
    }

    private static void Write(LinuxTunDevice tun, PacketBufferPool pool, params byte[][] packets)
    {
        var buffers = new PacketBuffer[packets.Length];
        for (int i = 0; i < packets.Length; i++)
        {
            buffers[i] = ToBuffer(pool, packets[i]);
        }
        tun.WriteBatch(buffers);
        foreach (PacketBuffer b in buffers)
        {
            b.Return();
        }
    }

    [Fact]
    public void A_tcp_send_through_the_device_arrives_as_valid_mtu_sized_segments_split_from_tso_super_packets()
    {
        using var ns = new NetworkNamespace();
        var pool = new PacketBufferPool();
        LinuxTunDevice tun = CreateDevice(ns);
        Socket? client = null;
        try
        {
            output.WriteLine($"offloads: {tun.Offloads}");
            Assert.True((tun.Offloads & TunOffloads.Tso) != 0, $"the kernel refused TSO: {tun.Offloads}");
            using var deadline = new Timer(_ => tun.WakeReader(), null, TimeSpan.FromSeconds(25), Timeout.InfiniteTimeSpan);
            client = ns.RunInside(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            client.Blocking = false;
            try
            {
                client.Connect(new IPEndPoint(new IPAddress(Remote), 5000));
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
            {
                // completes when the SYN-ACK below arrives
            }

            // Five buffers per read: a super-packet of more segments leaves some pending for the next call.
            var batch = new PacketBuffer[5];
            Tcp syn = ReadUntil(tun, pool, batch, t => (t.Flags & Syn) != 0 && t.DestinationPort == 5000);
            const uint serverIsn = 1_000_000;
            byte[] synAckOptions = [2, 4, 0x05, 0x64, 1, 3, 3, 7]; // MSS 1380 (= MTU - 40), NOP, window scale 7
            Write(tun, pool, Build(Remote, Local, 5000, syn.SourcePort, serverIsn, syn.Sequence + 1, Syn | Ack, [], options: synAckOptions));
            Assert.True(client.Poll(TimeSpan.FromSeconds(10), SelectMode.SelectWrite), "connect did not complete");
            client.Blocking = true;

            var data = new byte[256 * 1024];
            new Random(8).NextBytes(data);
            Exception? sendFailure = null;
            Socket sending = client;
            var sender = new Thread(() =>
            {
                try
                {
                    sending.Send(data);
                }
                catch (Exception e)
                {
                    sendFailure = e;
                }
            });
            sender.Start();
            uint expected = syn.Sequence + 1;
            int received = 0, segments = 0, retransmitted = 0, fullSized = 0;
            while (received < data.Length)
            {
                foreach (byte[] p in ReadOnce(tun, pool, batch))
                {
                    if (Parse(p) is not Tcp t || t.SourcePort != syn.SourcePort || t.DestinationPort != 5000 || t.PayloadLength == 0)
                    {
                        continue;
                    }
                    Assert.True(p.Length <= Mtu, $"segment of {p.Length} bytes exceeds the MTU");
                    Assert.True(ChecksumsValid(p), $"segment at sequence {t.Sequence} has a bad checksum");
                    if ((int)(t.Sequence - expected) < 0)
                    {
                        retransmitted++;
                        continue;
                    }
                    Assert.Equal(expected, t.Sequence);
                    Assert.True(p.AsSpan(t.PayloadOffset, t.PayloadLength).SequenceEqual(data.AsSpan(received, t.PayloadLength)),
                        $"payload at offset {received} differs");
                    expected += (uint)t.PayloadLength;
                    received += t.PayloadLength;
                    segments++;
                    fullSized += p.Length == Mtu ? 1 : 0;
                }
                // Cumulative ACK with a large window (scaled by 2^7) keeps the sender going.
                Write(tun, pool, Build(Remote, Local, 5000, syn.SourcePort, serverIsn + 1, expected, Ack, [], window: 65535));
            }
            Assert.True(sender.Join(TimeSpan.FromSeconds(10)), "send did not complete");
            Assert.Null(sendFailure);
            output.WriteLine($"{segments} segments ({fullSized} of {Mtu} bytes), {retransmitted} retransmitted, " +
                $"{tun.SuperPacketsRead} super-packets read, {tun.ReadDropped} dropped");
            Assert.Equal(data.Length, received);
            Assert.True(tun.SuperPacketsRead > 0, "the kernel sent no TSO super-packet");
            Assert.True(fullSized > 0);
            Assert.Equal(0, tun.ReadDropped);
        }
        finally
        {
            client?.Dispose();
            tun.Dispose();
        }
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void Coalesced_segments_written_to_the_device_reach_a_listening_socket_and_ce_is_never_merged()
    {
        using var ns = new NetworkNamespace();
        var pool = new PacketBufferPool();
        LinuxTunDevice tun = CreateDevice(ns);
        Socket? listener = null;
        Socket? server = null;
        try
        {
            using var deadline = new Timer(_ => tun.WakeReader(), null, TimeSpan.FromSeconds(25), Timeout.InfiniteTimeSpan);
            listener = ns.RunInside(() =>
            {
                var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                l.Bind(new IPEndPoint(IPAddress.Any, 6000));
                l.Listen(1);
                return l;
            });
            var batch = new PacketBuffer[16];
            const ushort remotePort = 40000;
            const uint isn = 5000;
            byte[] mss = [2, 4, 0x03, 0xE8]; // MSS 1000
            Write(tun, pool, Build(Remote, Local, remotePort, 6000, isn, 0, Syn, [], options: mss));
            Tcp synAck = ReadUntil(tun, pool, batch, t => (t.Flags & (Syn | Ack)) == (Syn | Ack) && t.SourcePort == 6000);
            Assert.Equal(isn + 1, synAck.AckNumber);
            uint ack = synAck.Sequence + 1;
            Write(tun, pool, Build(Remote, Local, remotePort, 6000, isn + 1, ack, Ack, []));
            Assert.True(listener.Poll(TimeSpan.FromSeconds(10), SelectMode.SelectRead), "accept did not complete");
            server = listener.Accept();

            var data = new byte[55 * 1000];
            new Random(9).NextBytes(data);
            byte[] Segment(int index, byte tos) => Build(Remote, Local, remotePort, 6000, isn + 1 + (uint)(index * 1000), ack,
                index is 39 or 54 ? (byte)(Ack | Psh) : Ack, data.AsSpan(index * 1000, 1000), id: (ushort)index, tos: tos);

            // 40 segments of one flow: one super-packet.
            var first = new byte[40][];
            for (int i = 0; i < 40; i++)
            {
                first[i] = Segment(i, 0);
            }
            Write(tun, pool, first);
            Assert.Equal(1, tun.SuperPacketsWritten);
            Assert.Equal(40, tun.SegmentsCoalesced);

            // 15 more, the eighth CE-marked (ECN field 11, RFC 3168): it is written alone, the seven on
            // each side become two super-packets.
            var second = new byte[15][];
            for (int i = 0; i < 15; i++)
            {
                second[i] = Segment(40 + i, i == 7 ? (byte)0x03 : (byte)0);
            }
            Write(tun, pool, second);
            Assert.Equal(3, tun.SuperPacketsWritten);
            Assert.Equal(54, tun.SegmentsCoalesced);
            Assert.Equal(0, tun.WriteErrors);

            var got = new byte[data.Length];
            int total = 0;
            server.ReceiveTimeout = 10_000;
            while (total < got.Length)
            {
                int n = server.Receive(got, total, got.Length - total, SocketFlags.None);
                Assert.True(n > 0, "the connection closed early");
                total += n;
            }
            Assert.Equal(data, got);
            output.WriteLine($"{total} bytes received from {tun.SuperPacketsWritten} super-packets and {55 - tun.SegmentsCoalesced} single segments");
        }
        finally
        {
            server?.Dispose();
            listener?.Dispose();
            tun.Dispose();
        }
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void Without_offloads_the_device_runs_plain_and_says_so()
    {
        using var ns = new NetworkNamespace();
        string name = "fzo" + NetworkNamespace.UniqueSuffix();
        using LinuxTunDevice tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Offloads = false }));
        Assert.Equal(TunOffloads.None, tun.Offloads);
        string features = Command.Check("ip", "netns", "exec", ns.Name, "cat", $"/sys/class/net/{name}/tun_flags");
        Assert.Equal(0, Convert.ToInt32(features.Trim(), 16) & 0x4000); // no IFF_VNET_HDR
    }
}
