using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// A hostile network: datagrams are lost, duplicated and delayed (reordered) at random while both
/// sides send and time jumps. Whatever happens, nothing throws, no inner packet arrives twice or
/// altered, the session recovers once the network behaves, and every buffer goes back to its pool.
/// </summary>
public class LossyWireTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(42)]
    public void Loss_duplication_and_reordering_never_deliver_twice_and_the_session_recovers(int seed)
    {
        var wire = new WireHarness(seed: 90 + seed);
        var random = new Random(seed);
        var held = new List<(WireHarness.Direction, byte[] Bytes, TimeSpan Until)>();
        bool chaos = true;
        wire.OnWire = (from, datagram) =>
        {
            if (!chaos)
            {
                return true;
            }
            int roll = random.Next(100);
            if (roll < 15)
            {
                return false; // lost
            }
            if (roll < 25)
            {
                held.Add((wire.DirectionFrom(from), datagram.Data.ToArray(), wire.Now + TimeSpan.FromMilliseconds(random.Next(1, 30_000))));
                return roll < 20; // duplicated (delivered now and later) or only delayed
            }
            return true;
        };

        var sent = new HashSet<string>();
        int tag = 0;
        for (int step = 0; step < 400; step++)
        {
            wire.AdvanceTo(wire.Now + TimeSpan.FromMilliseconds(random.Next(0, 3000)));
            var from = random.Next(2) == 0 ? wire.A : wire.B;
            var packet = wire.PacketFrom(from, random.Next(24, 1400), tag: tag++);
            sent.Add(Convert.ToHexString(packet));
            wire.SendPacket(from, packet);
            for (int i = held.Count - 1; i >= 0; i--)
            {
                if (held[i].Until <= wire.Now)
                {
                    var (direction, bytes, _) = held[i];
                    held.RemoveAt(i);
                    var to = direction == WireHarness.Direction.AToB ? wire.B : wire.A;
                    wire.Inject(to, bytes, wire.Other(to).Endpoint);
                    wire.Pump();
                }
            }
        }

        var received = wire.A.Received.Concat(wire.B.Received).Select(r => Convert.ToHexString(r.Packet)).ToList();
        foreach (var node in new[] { wire.A, wire.B })
        {
            var seen = new Dictionary<string, int>();
            for (int i = 0; i < node.Received.Count; i++)
            {
                var key = Convert.ToHexString(node.Received[i].Packet);
                if (seen.TryGetValue(key, out int first))
                {
                    Assert.Fail($"{node.Name} got it twice: first {node.ReceivedFrom[first]}, then {node.ReceivedFrom[i]}; tag {System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(node.Received[i].Packet.AsSpan(20))} len {node.Received[i].Packet.Length}");
                }
                seen[key] = i;
            }
        }
        Assert.Equal(received.Count, received.Distinct().Count()); // the replay window caught every duplicate
        Assert.All(received, r => Assert.Contains(r, sent));
        Assert.True(received.Count > sent.Count / 3, $"only {received.Count} of {sent.Count} arrived");

        // The network heals: within a handshake or two both directions work again.
        chaos = false;
        wire.AdvanceTo(wire.Now + TimeSpan.FromSeconds(200));
        int beforeA = wire.A.Received.Count, beforeB = wire.B.Received.Count;
        wire.SendPacket(wire.A, wire.PacketFrom(wire.A, tag: -1));
        wire.SendPacket(wire.B, wire.PacketFrom(wire.B, tag: -2));
        wire.AdvanceTo(wire.Now + TimeSpan.FromSeconds(12));
        Assert.Equal(beforeB + 1, wire.B.Received.Count);
        Assert.Equal(beforeA + 1, wire.A.Received.Count);

        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
        Assert.Equal(0, wire.A.Device.Indices.Count);
        Assert.Equal(0, wire.B.Device.Indices.Count);
    }
}
