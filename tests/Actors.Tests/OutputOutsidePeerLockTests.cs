using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// A reader thread writes and sends what it stepped after it has released the peer's lock, also a
/// batch that filled: a slow write there (a descheduled thread, a full socket buffer) must not hold
/// up the other reader or the peer's actor, which step the same peer.
/// </summary>
public sealed class OutputOutsidePeerLockTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public void A_slow_write_of_a_full_batch_does_not_hold_the_peer_for_the_other_direction()
    {
        var (a, b, c) = StartStar();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);
        b.Tun.Inject(Packets.Ipv4(b.Address, a.Address, id: 1));
        AwaitWritten(a, 1);

        // 130 packets from B pile up at A's socket, for one read: a full batch of 128 and 2 more.
        a.Socket.WakeOnArrival = false;
        var burst = Enumerable.Range(2, 130).Select(id => Packets.Ipv4(b.Address, a.Address, id: (ushort)id)).ToArray();
        int before = Network.Count(d => d.From == b.Endpoint && d.To == a.Endpoint && d.Type == MessageType.TransportData);
        b.Tun.Inject(burst);
        AwaitCondition(() => Network.Count(d => d.From == b.Endpoint && d.To == a.Endpoint && d.Type == MessageType.TransportData) == before + burst.Length, Wait);

        // A's socket reader steps them all; its write of the full batch takes long.
        a.Tun.HoldWritesOfAtLeast = 128;
        a.Socket.WakeOnArrival = true;
        a.Socket.Deliver([0xff], c.Endpoint, Ecn.NotEct); // wakes the reader; junk, dropped
        Assert.True(a.Tun.WriteHoldEntered.Wait(Wait));

        // Meanwhile A's TUN reader seals for B at once: B's lock is free.
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 2));
        AwaitCondition(() => b.Tun.WrittenCount == 2, TimeSpan.FromSeconds(3),
            "A's packet to B while A's write for B was held (the peer's lock held over the write)");

        a.Tun.WriteHoldRelease.Set();
        AwaitWritten(a, 1 + burst.Length);
        Assert.Equal(Enumerable.Range(1, 1 + burst.Length).Select(i => (ushort)i), a.Tun.Written.Select(Packets.IdOf));
        StopAndAssertNoLeaks(a, b, c);
    }
}
