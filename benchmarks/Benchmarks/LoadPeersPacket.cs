using System.Buffers.Binary;
using System.Net;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.Offload;
using Firezone.Actors.Engine.Packets;

namespace Firezone.Actors.Benchmarks;

/// <summary>The one packet each Client of <see cref="LoadPeers"/> sends again and again.</summary>
public static class LoadPeersPacket
{
    /// <summary>
    /// An IPv4/UDP packet of <paramref name="length"/> bytes from <paramref name="source"/>, ECT(0),
    /// both checksums set and DF, as a real sender's: a Gateway checks the checksums before it
    /// coalesces, and merges packets without DF only if their identification counts up (the kernel's
    /// GRO, inet_gro_receive's flush_id, and our UdpCoalescer), which one packet sent again and again
    /// cannot do. A Linux UDP socket sets DF (path MTU discovery, IP_PMTUDISC_WANT, the default) and
    /// identification 0 when unconnected, as here.
    /// </summary>
    public static byte[] Build(IPAddress source, IPAddress destination, int port, int length)
    {
        var packet = new byte[length];
        packet[0] = 0x45;
        packet[1] = (byte)Ecn.Ect0;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)length);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(6), 0x4000); // DF
        packet[8] = 64;
        packet[9] = 17;
        source.TryWriteBytes(packet.AsSpan(12, 4), out _);
        destination.TryWriteBytes(packet.AsSpan(16, 4), out _);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(10), Ipv4Checksum.Compute(packet.AsSpan(0, 20)));
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(20), 40000);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(22), (ushort)port);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(24), (ushort)(length - 20));
        ushort sum = InternetChecksum.Sum(packet.AsSpan(20), InternetChecksum.PseudoHeaderSum(packet.AsSpan(12, 4), packet.AsSpan(16, 4), 17, length - 20));
        ushort checksum = InternetChecksum.Finish(sum);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(26), checksum == 0 ? (ushort)0xffff : checksum);
        return packet;
    }
}
