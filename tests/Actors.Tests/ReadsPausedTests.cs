using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.Buffers;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// A reader with no buffer to read into (every buffer of the pool in flight) pauses its reads: the
/// tunnel then moves nothing, so the log says so at Warning, at most once per reader per interval,
/// instead of counting it silently (a Gateway stalled that way for 90 s said nothing).
/// </summary>
public sealed class ReadsPausedTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public void A_reader_with_every_buffer_in_flight_says_so_at_warning_once_per_interval()
    {
        var pool = new PacketBufferPool(preallocate: 0, maxBuffers: 0); // none to read into, as if all were in flight
        var a = TunnelNode.Start(Sys, Network, Clock, "a", 1, TestActor, pool: pool);
        EventFilter.Warning(contains: "every packet buffer is in use (0 of 0); its reads wait").ExpectOne(Wait, () =>
            a.Tun.Inject(Packets.Ipv4(a.Address, "10.0.0.2", id: 1)));
        // The reader goes on trying every millisecond; the line does not repeat within the interval.
        EventFilter.Warning(contains: "every packet buffer is in use").Expect(0, TimeSpan.FromSeconds(1), () => { });
        var topology = Control<TunnelTopology>(a, GetTunnelTopology.Instance);
        Assert.True(topology.Counters.PoolExhaustedCount > 10, $"{topology.Counters.PoolExhaustedCount} paused reads counted");
        StopAndAssertNoLeaks(a);
    }
}
