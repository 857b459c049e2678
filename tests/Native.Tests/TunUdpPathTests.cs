using System.Buffers.Binary;
using System.Net;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Native.Tests;

/// <summary>
/// The two halves together inside a test namespace: datagrams sent by <see cref="LinuxUdpSocket"/>
/// are routed into the TUN device, where the IPv4 header shows the ECN bits the control message
/// asked for (and DSCP 0); packets written to the TUN in one batch reach the socket with theirs.
/// </summary>
public sealed class TunUdpPathTests
{
    private static readonly Ecn[] AllCodepoints = [Ecn.NotEct, Ecn.Ect1, Ecn.Ect0, Ecn.Ce];

    [Fact]
    public void Ecn_set_per_datagram_appears_in_the_IP_header_and_ECN_in_written_packets_is_received()
    {
        using var ns = new NetworkNamespace();
        string name = "fzt" + NetworkNamespace.UniqueSuffix();
        var pool = new PacketBufferPool();
        var (tun, socket) = ns.RunInside(() =>
        {
            var device = new LinuxTunDevice(new TunDeviceOptions { Name = name });
            try
            {
                return (device, new LinuxUdpSocket(new UdpBatchSocketOptions()));
            }
            catch
            {
                device.Dispose();
                throw;
            }
        });
        try
        {
            Command.Check("ip", "-n", ns.Name, "addr", "add", "10.201.0.1/24", "dev", name);
            Command.Check("ip", "-n", ns.Name, "route", "add", "10.202.0.0/24", "dev", name);
            byte[] local = [10, 201, 0, 1];
            byte[] remote = [10, 202, 0, 9];
            const ushort RemotePort = 7777;
            const int Count = 12;

            // Out: socket -> kernel -> TUN.
            var datagrams = new PacketBuffer[Count];
            for (int i = 0; i < Count; i++)
            {
                datagrams[i] = UdpTestKit.Datagram(pool, i, 200, AllCodepoints[i % 4], UdpEndpoint.FromIPv4(remote, RemotePort));
            }
            Assert.Equal(Count, socket.SendBatch(datagrams));
            foreach (var datagram in datagrams)
            {
                datagram.Return();
            }

            var seen = new bool[Count];
            int found = 0;
            int largestBatch = 0;
            var batch = new PacketBuffer[32];
            using (var deadline = new Timer(_ => tun.WakeReader(), null, TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan))
            {
                while (found < Count)
                {
                    for (int i = 0; i < batch.Length; i++)
                    {
                        batch[i] = pool.Rent();
                    }
                    int count = tun.ReadBatch(batch);
                    largestBatch = Math.Max(largestBatch, count);
                    for (int i = 0; i < count; i++)
                    {
                        ReadOnlySpan<byte> packet = batch[i].Data;
                        if ((packet[0] >> 4) != 4 || packet[9] != 17 || !packet.Slice(16, 4).SequenceEqual(remote))
                        {
                            continue; // IPv6 router solicitations and other chatter
                        }
                        int headerLength = (packet[0] & 0x0F) * 4;
                        ReadOnlySpan<byte> udp = packet[headerLength..];
                        Assert.Equal(socket.LocalPort, BinaryPrimitives.ReadUInt16BigEndian(udp));
                        Assert.Equal(RemotePort, BinaryPrimitives.ReadUInt16BigEndian(udp[2..]));
                        Assert.True(packet.Slice(12, 4).SequenceEqual(local));
                        int number = udp[8];
                        Assert.Equal(AllCodepoints[number % 4], (Ecn)(packet[1] & 0b11));
                        Assert.Equal(0, packet[1] >> 2); // DSCP 0 (RFC 6040 section 4.1: only ECN is copied)
                        seen[number] = true;
                        found++;
                    }
                    for (int i = 0; i < batch.Length; i++)
                    {
                        batch[i].Return();
                    }
                    Assert.True(count > 0, $"only {found} of {Count} datagrams reached the TUN device within 10 s");
                }
            }
            Assert.All(seen, Assert.True);
            Assert.True(largestBatch > 1, "queued packets should come out of one ReadBatch together");

            // In: one WriteBatch of crafted IPv4/UDP packets -> kernel -> socket.
            var packets = new PacketBuffer[Count];
            for (int i = 0; i < Count; i++)
            {
                packets[i] = pool.Rent();
                int length = BuildUdpPacket(packets[i].Writable, remote, RemotePort, local, (ushort)socket.LocalPort, AllCodepoints[(i + 1) % 4], (byte)i);
                packets[i].SetData(PacketBuffer.Headroom, length);
            }
            tun.WriteBatch(packets);
            foreach (var packet in packets)
            {
                packet.Return();
            }
            Assert.Equal(0, tun.WriteErrors);

            foreach (var buffer in UdpTestKit.ReceiveExactly(socket, pool, Count))
            {
                int number = buffer.Data[0];
                Assert.Equal(AllCodepoints[(number + 1) % 4], buffer.Ecn);
                Assert.Equal(UdpEndpoint.FromIPv4(remote, RemotePort), buffer.Endpoint);
                buffer.Return();
            }
        }
        finally
        {
            socket.Dispose();
            tun.Dispose();
        }
        Assert.Equal(0, pool.Outstanding);
    }

    /// <summary>An IPv4 header (RFC 791) with the given ECN, then UDP (checksum 0: none, RFC 768) and 32 bytes of payload.</summary>
    private static int BuildUdpPacket(Span<byte> packet, byte[] source, ushort sourcePort, byte[] destination, ushort destinationPort, Ecn ecn, byte number)
    {
        const int PayloadLength = 32;
        int length = 20 + 8 + PayloadLength;
        packet[..length].Clear();
        packet[0] = 0x45;
        packet[1] = (byte)ecn;
        BinaryPrimitives.WriteUInt16BigEndian(packet[2..], (ushort)length);
        packet[8] = 64;
        packet[9] = 17;
        source.CopyTo(packet[12..]);
        destination.CopyTo(packet[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(packet[10..], IcmpEcho.InternetChecksum(packet[..20]));
        Span<byte> udp = packet[20..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)(8 + PayloadLength));
        for (int i = 0; i < PayloadLength; i++)
        {
            udp[8 + i] = (byte)(number + i);
        }
        return length;
    }
}
