using Akka.Actor;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tunnel;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// A TUN reader that stops while its thread is busy in a read waits for that thread (up to
/// <see cref="Tunnels.ReaderStopBound"/>, 1 s) on its own thread, never on the default dispatcher
/// the peers, the PeerSupervisor and the TunnelActor share (STYLE.md rule 8). Its PostStop joined on
/// the default dispatcher, so a StopReading (a rebuild) held one of the peers' threads for a second
/// while the peers were still to send what had been read. The default dispatcher here has one
/// thread, so a join on it holds every peer: the peers' answer must come before the reader's stop
/// ends, which takes the whole join bound (its thread stays in the read until the test ends it).
/// That bound is <see cref="JoinBound"/> here, not the 1 s of <see cref="Tunnels.ReaderStopBound"/>:
/// with 1 s, a status request that took a second through the TunnelActor and the PeerSupervisor on
/// a loaded 2-core machine (other test classes alongside) failed a correct tunnel. A join on the
/// default dispatcher still delays the answer until the join ends, by 5 s now.
/// </summary>
public sealed class ReaderStopDispatcherTests(ITestOutputHelper output) : ActorTestBase(output, OneThreadDefaultDispatcher)
{
    private const string OneThreadDefaultDispatcher = """
        akka.actor.default-dispatcher {
          executor = fork-join-executor
          fork-join-executor {
            parallelism-min = 1
            parallelism-factor = 1.0
            parallelism-max = 1
          }
        }
        """;

    private static readonly TimeSpan JoinBound = TimeSpan.FromSeconds(5);

    [Fact]
    public void The_peers_answer_while_the_TUN_reader_stops_with_its_thread_stuck_in_a_read()
    {
        var a = StartNode("a", 1, readerStopBound: JoinBound);
        var topology = Control<TunnelTopology>(a, GetTunnelTopology.Instance);
        AwaitCondition(() => topology.Counters.ReaderThreadsRunning == 2, Wait); // the TUN reader and the UDP receiver
        a.Tun.ReadStall = TimeSpan.FromSeconds(30); // until the test ends it
        a.Tun.Inject(Packets.Ipv4(a.Address, "10.99.0.9", payloadLength: 40, id: 1));
        try
        {
            AwaitCondition(() => a.Tun.StalledReads >= 1, Wait);
            var watcher = CreateTestProbe();
            watcher.Watch(topology.TunReader);
            var stopAsker = CreateTestProbe();
            var statusAsker = CreateTestProbe();

            a.Tunnel.Tell(StopReading.Instance, stopAsker.Ref);
            a.Tunnel.Tell(GetDeviceStatus.Instance, statusAsker.Ref); // through the TunnelActor to the PeerSupervisor

            statusAsker.ExpectMsg<DeviceStatus>(Wait);
            Assert.False(watcher.HasMessages, "the TUN reader's stop ended before the PeerSupervisor answered: its join held the default dispatcher");
            // The join's bound still holds: the stop ends after it, the thread still counted.
            watcher.ExpectTerminated(topology.TunReader, Wait);
            stopAsker.ExpectMsg<ReadingStopped>(Wait);
            Assert.Equal(1, topology.Counters.ReaderThreadsRunning); // the TUN reader, still in its read
        }
        finally
        {
            a.Tun.EndStalls(); // also on a failure: no reader thread left in a 30 s read
        }
        AwaitCondition(() => topology.Counters.ReaderThreadsRunning == 0, Wait);
        StopAndAssertNoLeaks(a);
    }
}
