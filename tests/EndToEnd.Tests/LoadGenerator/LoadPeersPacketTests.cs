using System.Buffers.Binary;
using System.Net;
using Firezone.Actors.Benchmarks;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Offload;

namespace Firezone.Actors.EndToEnd.Tests.LoadGenerator;

/// <summary>
/// The packet load-peers sends: checked field by field against RFC 791 and RFC 768 with checksums
/// computed here (not with the engine's helpers the generator uses), so a wrong offset or sum in
/// either shows.
/// </summary>
public sealed class LoadPeersPacketTests
{
    [Theory]
    [InlineData(28)] // headers only
    [InlineData(29)] // odd: the checksum pads the last byte with zero
    [InlineData(600)]
    [InlineData(1420)] // the tunnel MTU peers.py asks for
    [InlineData(1421)]
    public void Packet_IsIpv4UdpOfTheAskedLengthWithBothChecksumsRight(int length)
    {
        var packet = LoadPeersPacket.Build(IPAddress.Parse("10.78.1.7"), IPAddress.Parse("10.78.0.1"), 9, length);

        Assert.Equal(length, packet.Length);
        Assert.Equal(0x45, packet[0]); // version 4, IHL 5
        Assert.Equal(0b10, packet[1] & 0b11); // ECT(0)
        Assert.Equal(0, packet[1] >> 2); // DSCP 0
        Assert.Equal(length, BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(2)));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(6)) & 0x3fff); // no fragment
        Assert.True(packet[8] > 0, "TTL 0 would be dropped by the Gateway's kernel");
        Assert.Equal(17, packet[9]);
        Assert.Equal(new byte[] { 10, 78, 1, 7 }, packet[12..16]);
        Assert.Equal(new byte[] { 10, 78, 0, 1 }, packet[16..20]);
        Assert.Equal(0xffff, OnesComplementSum(packet.AsSpan(0, 20)));

        Assert.Equal(9, BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(22)));
        Assert.Equal(length - 20, BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(24)));
        Assert.NotEqual(0, BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(26))); // 0 would mean "no checksum"
        var pseudo = new byte[12 + length - 20];
        packet.AsSpan(12, 8).CopyTo(pseudo);
        pseudo[9] = 17;
        BinaryPrimitives.WriteUInt16BigEndian(pseudo.AsSpan(10), (ushort)(length - 20));
        packet.AsSpan(20).CopyTo(pseudo.AsSpan(12));
        Assert.Equal(0xffff, OnesComplementSum(pseudo));
    }

    [Fact]
    public void Packet_CarriesEachClientsOwnSourceAddress()
    {
        var a = LoadPeersPacket.Build(IPAddress.Parse("10.78.1.1"), IPAddress.Parse("10.78.0.1"), 9, 100);
        var b = LoadPeersPacket.Build(IPAddress.Parse("10.78.1.2"), IPAddress.Parse("10.78.0.1"), 9, 100);

        Assert.Equal(new byte[] { 10, 78, 1, 1 }, a[12..16]);
        Assert.Equal(new byte[] { 10, 78, 1, 2 }, b[12..16]);
    }

    /// <summary>
    /// A Client's packets, one after another, are what a Gateway may coalesce into one super-packet
    /// (the Gateway's own UdpCoalescer, whose IP rules are the kernel's GRO's): as a real UDP sender's
    /// they carry DF, so their fixed identification does not have to count up (inet_gro_receive's
    /// flush_id). Without DF and with identification 0 in every one, no Gateway merges any two of
    /// them, and the benchmark measures a receive path real traffic does not take.
    /// </summary>
    [Theory]
    [InlineData(1420)]
    [InlineData(600)]
    public void Packet_ConsecutiveCopiesAreCoalescible_DontFragmentAsARealSendersAre(int length)
    {
        var packet = LoadPeersPacket.Build(IPAddress.Parse("10.78.1.7"), IPAddress.Parse("10.78.0.1"), 9, length);
        var pool = new PacketBufferPool(preallocate: 4);
        var batch = new PacketBuffer[4];
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = pool.Rent();
            packet.CopyTo(batch[i].Memory[PacketBuffer.Headroom..]);
            batch[i].SetData(PacketBuffer.Headroom, packet.Length);
        }

        Assert.Equal(batch.Length, UdpCoalescer.FindRun(batch, 0, new bool[batch.Length], new int[batch.Length], 65535));
        Assert.Equal(0x4000, BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(6))); // DF, no fragment
    }

    /// <summary>RFC 1071: the 16-bit one's complement sum; 0xffff over data that includes its own right checksum.</summary>
    private static int OnesComplementSum(ReadOnlySpan<byte> data)
    {
        long sum = 0;
        for (int i = 0; i < data.Length; i += 2)
        {
            sum += (data[i] << 8) | (i + 1 < data.Length ? data[i + 1] : 0);
        }
        while (sum > 0xffff)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        return (int)sum;
    }
}
