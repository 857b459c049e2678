using System.Buffers.Binary;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

using Ecn = Firezone.Actors.Engine.Ecn;

/// <summary>
/// A long stream of one live session's transport messages (fixed seed), delivered reordered and
/// duplicated, with corrupted copies (counter, receiver, ciphertext or tag bytes changed, truncated,
/// extended) and garbage aimed at the live receiver index in between. Against a model of the replay
/// window: each genuine message is opened exactly once (the first time it comes, within the window)
/// and gives back exactly the packet sealed; every other delivery is refused; the receiver is
/// never left unable to open the next genuine message; no buffer leaks.
/// </summary>
public class SeededTransportStreamTests
{
    private static readonly UdpEndpoint From = UdpEndpoint.FromIPv4([198, 51, 100, 7], 51820);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Reordered_duplicated_and_corrupted_transport_messages_open_exactly_the_genuine_ones_once(int seed)
    {
        var random = new Random(seed);
        var wire = new WireHarness(seed: 5000 + seed);
        wire.Handshake();
        const int count = 1500;
        var packets = new byte[count][];
        var datagrams = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            packets[i] = wire.PacketFrom(wire.A, 20 + random.Next(0, 300), (Ecn)random.Next(4), tag: i);
            var buffer = TestPackets.Rent(wire.A.Pool, packets[i]);
            Assert.Equal(SealResult.Sealed, wire.A.Peer.HandleTunPacket(buffer, wire.Now));
            datagrams[i] = buffer.Data.ToArray();
            buffer.Return();
        }
        // Delivery order: mostly in order, with local reordering, duplicates and corruptions.
        var opened = new bool[count];
        int next = 0;
        var pending = new List<int>();
        int genuineOpened = 0;
        for (int step = 0; step < 6 * count && (next < count || pending.Count > 0); step++)
        {
            if (next < count && (pending.Count == 0 || random.Next(3) != 0))
            {
                pending.Add(next++);
            }
            int pick = pending[random.Next(pending.Count)];
            byte[] original = datagrams[pick];
            int action = random.Next(10);
            byte[] bytes = action switch
            {
                < 5 => original,
                5 => Corrupt(random, original),
                6 => Corrupt(random, original),
                7 => Garbage(random, original),
                _ => original, // may be a duplicate
            };
            if (action < 5 || action >= 8)
            {
                if (action < 5)
                {
                    pending.Remove(pick);
                }
            }
            bool genuine = ReferenceEquals(bytes, original);
            var result = Deliver(wire.B, bytes, wire.Now, out byte[]? delivered);
            string what = $"seed {seed} step {step} message {pick} action {action}: {Convert.ToHexString(bytes)}";
            if (genuine)
            {
                bool expectOpen = !opened[pick];
                Assert.True(expectOpen == (result == OpenResult.Packet), $"{result}, expected {(expectOpen ? "Packet" : "Replayed")}: {what}");
                if (expectOpen)
                {
                    Assert.True(delivered!.AsSpan().SequenceEqual(packets[pick]), "another packet delivered: " + what);
                    opened[pick] = true;
                    genuineOpened++;
                }
                else
                {
                    Assert.True(result == OpenResult.Replayed, $"{result}: {what}");
                }
            }
            else
            {
                Assert.True(result is not (OpenResult.Packet or OpenResult.Keepalive), $"a forgery opened ({result}): {what}");
            }
        }
        Assert.Equal(count, genuineOpened);
        // Still works afterwards: a fresh packet from A opens at B.
        byte[] last = wire.PacketFrom(wire.A, 100, tag: 9999);
        var lastBuffer = TestPackets.Rent(wire.A.Pool, last);
        Assert.Equal(SealResult.Sealed, wire.A.Peer.HandleTunPacket(lastBuffer, wire.Now));
        byte[] lastDatagram = lastBuffer.Data.ToArray();
        lastBuffer.Return();
        Assert.Equal(OpenResult.Packet, Deliver(wire.B, lastDatagram, wire.Now, out var lastDelivered));
        Assert.True(lastDelivered!.AsSpan().SequenceEqual(last));
        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }

    private static byte[] Corrupt(Random random, byte[] original)
    {
        byte[] bytes = (byte[])original.Clone();
        switch (random.Next(6))
        {
            case 0: // another counter, near the real one
                ulong counter = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(MessageLayout.TransportCounter));
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(MessageLayout.TransportCounter), counter + (ulong)random.Next(1, 3000));
                break;
            case 1: // a ciphertext or tag bit
                bytes[MessageHeader.TransportHeaderSize + random.Next(bytes.Length - MessageHeader.TransportHeaderSize)] ^= (byte)(1 << random.Next(8));
                break;
            case 2: // truncated (at least the type and a byte less)
                Array.Resize(ref bytes, random.Next(0, bytes.Length));
                break;
            case 3: // extended
                Array.Resize(ref bytes, bytes.Length + random.Next(1, 40));
                break;
            case 4: // a reserved byte
                bytes[1 + random.Next(3)] = (byte)random.Next(1, 256);
                break;
            default: // the tag replaced
                random.NextBytes(bytes.AsSpan(bytes.Length - MessageHeader.AeadTagSize));
                break;
        }
        return bytes;
    }

    /// <summary>Random bytes behind the live header (type, receiver index, a counter ahead).</summary>
    private static byte[] Garbage(Random random, byte[] original)
    {
        var bytes = new byte[random.Next(MessageHeader.TransportMinSize, 400)];
        random.NextBytes(bytes);
        original.AsSpan(0, MessageLayout.TransportCounter).CopyTo(bytes);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(MessageLayout.TransportCounter), (ulong)random.Next(0, 10000));
        return bytes;
    }

    private static OpenResult? Deliver(Node node, byte[] bytes, TimeSpan now, out byte[]? delivered)
    {
        delivered = null;
        var buffer = node.Pool.Rent();
        try
        {
            bytes.CopyTo(buffer.Writable);
            buffer.Length = bytes.Length;
            buffer.Endpoint = From;
            if (MessageHeader.Classify(buffer.Data, out uint receiver) != MessageType.TransportData
                || !node.Device.Indices.TryLookup(receiver, out var owner) || owner != node.Peer.PublicKey)
            {
                return null; // the socket reader drops it
            }
            var result = node.Peer.HandleTransportData(buffer, now);
            if (result == OpenResult.Packet)
            {
                delivered = buffer.Data.ToArray();
            }
            return result;
        }
        finally
        {
            buffer.Return();
        }
    }
}
