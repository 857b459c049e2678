using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// Packets the engine holds behind a handshake and releases when a socket-reader step completes it
/// leave before the peer's lock is released, so the TUN reader cannot seal and send a newer packet of
/// the same flow ahead of them.
/// </summary>
public sealed class StagedPacketOrderTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public void Staged_packets_released_by_a_socket_reader_step_leave_before_a_newer_packet_from_the_TUN_reader()
    {
        var (a, b, c) = StartStar();
        // A <-> C session, and C knows A's endpoint (learned from the handshake).
        a.Tun.Inject(Packets.Ipv4(a.Address, c.Address, id: 1));
        AwaitWritten(c, 1);
        c.Tun.Inject(Packets.Ipv4(c.Address, a.Address, id: 1));
        AwaitWritten(a, 1);
        var registry = Control<TunnelTopology>(a, GetTunnelTopology.Instance).Registry;
        Assert.True(registry.TryGet(b.PublicKey, out var slotB));
        Assert.True(registry.TryGet(c.PublicKey, out var slotC));
        AwaitCondition(() => !slotB.HasBacklog && !slotC.HasBacklog, Wait);

        // A's socket reader is no longer woken by arrivals: B's response and C's data pile up for one read.
        a.Socket.WakeOnArrival = false;
        // A has no session with B yet: ids 1..3 are staged behind the handshake A starts now.
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1), Packets.Ipv4(a.Address, b.Address, id: 2), Packets.Ipv4(a.Address, b.Address, id: 3));
        AwaitCondition(() => Network.Count(d => d.From == b.Endpoint && d.To == a.Endpoint && d.Type == MessageType.Response) == 1, Wait);
        int cData = Network.Count(d => d.From == c.Endpoint && d.To == a.Endpoint && d.Type == MessageType.TransportData);
        c.Tun.Inject(Packets.Ipv4(c.Address, a.Address, id: 2));
        AwaitCondition(() => Network.Count(d => d.From == c.Endpoint && d.To == a.Endpoint && d.Type == MessageType.TransportData) == cData + 1, Wait);

        // One read: [B's response, C's data]. Stepping C takes a while (a descheduled thread, a big group).
        a.Seam.HoldOpenOfKey = c.PublicKey.ToArray();
        a.Socket.WakeOnArrival = true;
        a.Socket.Deliver([0xff], c.Endpoint, Ecn.NotEct); // wakes the reader; junk, dropped
        Assert.True(a.Seam.HoldEntered.Wait(Wait));
        // B's group came first: the response completed the handshake and released 1..3. A newer packet
        // for B through the TUN reader, while the socket reader is still inside C's group:
        int seen = Network.Count(d => d.From == a.Endpoint && d.To == b.Endpoint && d.Type == MessageType.TransportData);
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 4));
        AwaitCondition(() => Network.Count(d => d.From == a.Endpoint && d.To == b.Endpoint && d.Type == MessageType.TransportData) > seen, Wait);
        a.Seam.HoldRelease.Set();
        AwaitWritten(b, 4);

        Assert.Equal([1, 2, 3, 4], b.Tun.Written.Select(p => (int)Packets.IdOf(p)));
        AwaitWritten(a, 2); // C's second packet, once the hold ended
        StopAndAssertNoLeaks(a, b, c);
    }
}
