using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>The data path allocates nothing per packet (counted in bytes, not timed).</summary>
public class AllocationTests
{
    [Fact]
    public void Sealing_and_opening_with_an_established_session_allocates_nothing()
    {
        var wire = new WireHarness(seed: 81);
        wire.Handshake();
        var packet = wire.PacketFrom(wire.A, 1420);
        var buffer = wire.A.Pool.Rent();
        var now = wire.Now;

        void RoundTrip()
        {
            packet.CopyTo(buffer.Memory[PacketBuffer.Headroom..]);
            buffer.SetData(PacketBuffer.Headroom, packet.Length);
            if (wire.A.Peer.HandleTunPacket(buffer, now) != SealResult.Sealed
                || wire.B.Peer.HandleTransportData(buffer, now) != OpenResult.Packet)
            {
                throw new InvalidOperationException("round trip failed");
            }
        }

        for (int i = 0; i < 200; i++)
        {
            RoundTrip();
        }
        // Steady state: a per-packet allocation shows in every round of 2,000 packets; a one-off
        // (a first-time path, a GC from another test's thread inside the window) does not repeat.
        long allocated = long.MaxValue;
        for (int attempt = 0; attempt < 5 && allocated != 0; attempt++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 2000; i++)
            {
                RoundTrip();
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.Equal(0, allocated);

        buffer.Return();
        wire.Dispose();
        Assert.Equal(0, wire.A.Pool.Outstanding);
        Assert.Equal(0, wire.B.Pool.Outstanding);
    }
}
