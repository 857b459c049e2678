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
}
