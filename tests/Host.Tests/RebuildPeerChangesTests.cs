using Akka.Actor;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Engine.WireGuard;
using Firezone.Actors.Host.Tunnel;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// A rebuild (a new private key or listen port) gives the new tunnel the peers the old one had, in
/// one ApplyPeerChanges (ActorTunnelControl.ApplyCarriedPeersAsync). When the tunnel's answer came
/// after the Ask's bound (thousands of peers on a busy machine), the rebuild threw: `wg set` got EIO
/// and the rest of its request was not applied, although the tunnel ran on the new key or port and
/// went on to add every peer (found by a review of the rebuild, 2026-11-27). wireguard-go answers
/// errno=0 once the key is applied; so does the daemon now, and the log says the peers are still
/// being added.
/// </summary>
public sealed class RebuildPeerChangesTests
{
    /// <summary>A tunnel that applies the changes it is given, and answers only after <paramref name="delay"/>.</summary>
    private sealed class SlowTunnel : ReceiveActor
    {
        public SlowTunnel(TimeSpan delay, TaskCompletionSource<ApplyPeerChanges> applied)
        {
            ReceiveAsync<ApplyPeerChanges>(async changes =>
            {
                applied.TrySetResult(changes);
                var sender = Sender;
                await Task.Delay(delay);
                sender.Tell(new PeerChangesApplied(changes.Upsert.Count, 0, 0));
            });
        }
    }

    [Fact]
    public async Task Peers_of_a_rebuilt_tunnel_confirmed_too_late_are_not_a_failure_of_the_rebuild()
    {
        using var system = ActorSystem.Create("rebuild-peer-changes");
        try
        {
            var applied = new TaskCompletionSource<ApplyPeerChanges>(TaskCreationOptions.RunContinuationsAsynchronously);
            var tunnel = system.ActorOf(Props.Create(() => new SlowTunnel(TimeSpan.FromSeconds(2), applied)));
            var client = new TunnelClient(tunnel, TimeSpan.FromMilliseconds(100));
            var peers = new List<PeerConfig> { new() { PublicKey = TestKeys.New() }, new() { PublicKey = TestKeys.New() } };
            var logger = new ListLogger();

            bool confirmed = await ActorTunnelControl.ApplyCarriedPeersAsync(client, new ApplyPeerChanges(false, [], peers), logger, generation: 2); // was: AskTimeoutException (EIO)

            Assert.False(confirmed);
            Assert.Same(peers, (await applied.Task.WaitAsync(TimeSpan.FromSeconds(10))).Upsert); // the tunnel has them
            var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning);
            Assert.Contains("Tunnel 2 has not confirmed its 2 peer(s) in time", warning.Message);
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task Peers_of_a_rebuilt_tunnel_confirmed_in_time_say_so()
    {
        using var system = ActorSystem.Create("rebuild-peer-changes");
        try
        {
            var applied = new TaskCompletionSource<ApplyPeerChanges>(TaskCreationOptions.RunContinuationsAsynchronously);
            var tunnel = system.ActorOf(Props.Create(() => new SlowTunnel(TimeSpan.Zero, applied)));
            var client = new TunnelClient(tunnel, TimeSpan.FromSeconds(10));
            var logger = new ListLogger();

            Assert.True(await ActorTunnelControl.ApplyCarriedPeersAsync(client, new ApplyPeerChanges(false, [], [new PeerConfig { PublicKey = TestKeys.New() }]), logger, generation: 2));
            Assert.DoesNotContain(logger.Entries, e => e.Level >= LogLevel.Warning);
        }
        finally
        {
            await system.Terminate();
        }
    }
}
