using Akka.Actor;
using Akka.Dispatch;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Actors.Tunnel;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// SocketIO and TunWriter block in system calls on a message (a full socket buffer waits up to
/// 100 ms), TunReader and SocketIO in the join of their reader threads when they stop (up to 1 s):
/// they run on their own pinned threads, never on the default dispatcher the peers share.
/// </summary>
public sealed class IoDispatcherTests(ITestOutputHelper output) : ActorTestBase(output)
{
    private static Props PropsOf(IActorRef actor) => ((ActorRefWithCell)actor).Underlying.Props;

    [Fact]
    public async Task Socket_TUN_writer_and_TUN_reader_run_on_the_pinned_IO_dispatcher_and_peers_do_not()
    {
        var (a, b) = StartPair();
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, id: 1));
        AwaitWritten(b, 1);

        var socketIO = await Sys.ActorSelection(a.Tunnel.Path / "socket-io").ResolveOne(Wait);
        var tunWriter = await Sys.ActorSelection(a.Tunnel.Path / "tun-writer").ResolveOne(Wait);
        var tunReader = await Sys.ActorSelection(a.Tunnel.Path / "tun-reader").ResolveOne(Wait);
        var peers = await Sys.ActorSelection(a.Tunnel.Path / "peers").ResolveOne(Wait);
        Assert.Equal(Tunnels.IoDispatcherId, PropsOf(socketIO).Dispatcher);
        Assert.Equal(Tunnels.IoDispatcherId, PropsOf(tunWriter).Dispatcher);
        Assert.Equal(Tunnels.IoDispatcherId, PropsOf(tunReader).Dispatcher);
        Assert.NotEqual(Tunnels.IoDispatcherId, PropsOf(peers).Dispatcher);
        // Tunnels.Start registered it without the host configuring anything, as a PinnedDispatcher.
        Assert.True(Sys.Dispatchers.HasDispatcher(Tunnels.IoDispatcherId));
        Assert.IsType<PinnedDispatcher>(Sys.Dispatchers.Lookup(Tunnels.IoDispatcherId));
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public void A_host_definition_of_the_IO_dispatcher_wins_over_the_fallback()
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString(
            Tunnels.IoDispatcherId + " { type = Dispatcher, throughput = 7 }");
        using var system = ActorSystem.Create("io-dispatcher-host", config);
        Tunnels.EnsureIoDispatcher(system);
        Tunnels.EnsureIoDispatcher(system);
        Assert.Equal(7, system.Settings.Config.GetInt(Tunnels.IoDispatcherId + ".throughput"));
        Assert.IsNotType<PinnedDispatcher>(system.Dispatchers.Lookup(Tunnels.IoDispatcherId));
    }
}
