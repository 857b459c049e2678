using System.Runtime.CompilerServices;
using Akka.Actor;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tunnel;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>The async client the host uses from outside the actor system.</summary>
public sealed class TunnelClientTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public async Task The_client_configures_queries_and_removes_peers()
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        var client = new TunnelClient(a.Tunnel, Wait);
        Assert.True((await client.AddOrUpdatePeerAsync(a.PeerConfigFor(b, keepalive: 15))).Created);
        Assert.False((await client.AddOrUpdatePeerAsync(a.PeerConfigFor(b, keepalive: 20))).Created);
        var status = await client.GetPeerStatusAsync(b.PublicKey);
        Assert.NotNull(status);
        Assert.Equal(20, status.PersistentKeepaliveSeconds);
        Assert.Equal(20, status.Config.PersistentKeepaliveSeconds);
        Assert.Null(await client.GetPeerStatusAsync(a.PublicKey));
        Assert.Single((await client.GetDeviceStatusAsync()).Peers);
        Assert.True((await client.RemovePeerAsync(b.PublicKey)).Existed);
        Assert.Equal(0, (await client.RemoveAllPeersAsync()).Count);
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public async Task A_delivered_device_status_is_not_kept_alive_by_the_actors()
    {
        // Akka's ActorCell keeps the sender of its last message; with a plain Ask that sender holds
        // the reply, so a status of every peer stayed reachable while the tunnel was idle (issue 8).
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        var client = new TunnelClient(a.Tunnel, Wait);
        await client.AddOrUpdatePeerAsync(a.PeerConfigFor(b, keepalive: 0));
        var status = await StatusReference(client);
        // The awaited call may have resumed this method inline, below its own frame: leave that stack.
        await Task.Yield();
        for (int i = 0; i < 3 && status.IsAlive; i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
        }
        Assert.False(status.IsAlive);
        StopAndAssertNoLeaks(a, b);
    }

    [Fact]
    public async Task A_status_request_nobody_answers_fails_with_an_ask_timeout()
    {
        var silent = Sys.ActorOf(Props.Create(() => new Silent()), "silent");
        var client = new TunnelClient(silent, TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAsync<AskTimeoutException>(() => client.GetDeviceStatusAsync());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<WeakReference> StatusReference(TunnelClient client)
    {
        var status = await client.GetDeviceStatusAsync();
        Assert.Single(status.Peers);
        return new WeakReference(status);
    }

    private sealed class Silent : ReceiveActor
    {
        public Silent() => ReceiveAny(_ => { });
    }
}
