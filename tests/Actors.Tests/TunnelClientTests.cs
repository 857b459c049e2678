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
        var device = await client.GetDeviceStatusAsync();
        Assert.NotNull(device);
        Assert.Single(device.Peers);
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

    /// <summary>
    /// A status answered after the usual bound (5 s; a tunnel of thousands of peers on a busy
    /// machine, or one still applying a set) is waited for, as wireguard-go's get answers however
    /// long it takes. Before, the Ask ended at the bound: `wg show` of 10,000 peers on a daemon
    /// slowed to 1 ms of every second (SIGSTOP/SIGCONT) answered EIO ("Timeout after 00:00:05").
    /// </summary>
    [Fact]
    public async Task A_device_status_answered_after_the_bound_is_waited_for_and_the_lateness_is_told_once()
    {
        var slow = Sys.ActorOf(Props.Create(() => new StatusAfter(TimeSpan.FromSeconds(1))), "slow-status");
        var client = new TunnelClient(slow, TimeSpan.FromMilliseconds(100));
        var late = new List<TimeSpan>();

        var status = await client.GetDeviceStatusAsync(late: late.Add)
            .WaitAsync(TimeSpan.FromSeconds(10)); // was: AskTimeoutException after 0.1 s

        Assert.NotNull(status);
        Assert.Equal(51820, status.ListenPort);
        Assert.Equal([TimeSpan.FromMilliseconds(100)], late);
    }

    [Fact]
    public async Task A_device_status_answered_within_the_bound_is_not_late()
    {
        var quick = Sys.ActorOf(Props.Create(() => new StatusAfter(TimeSpan.Zero)), "quick-status");
        var client = new TunnelClient(quick, TimeSpan.FromSeconds(5));
        var late = new List<TimeSpan>();

        Assert.NotNull(await client.GetDeviceStatusAsync(late: late.Add).WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Empty(late);
    }

    [Fact]
    public async Task The_device_status_of_a_tunnel_that_stops_before_answering_ends_the_wait_without_an_answer()
    {
        var stopping = Sys.ActorOf(Props.Create(() => new StopsOnStatus()), "stopping-status");
        var client = new TunnelClient(stopping, TimeSpan.FromMilliseconds(100));

        Assert.Null(await client.GetDeviceStatusAsync().WaitAsync(TimeSpan.FromSeconds(10))); // was: AskTimeoutException
    }

    /// <summary>
    /// A tunnel that stopped before the request was made never answers it: the wait ends at once,
    /// not at the bound (before, the tunnel was watched only after the bound, so a `wg show` or
    /// `wg set` that reached a tunnel between its stop and the host noticing it waited 5 s for EIO).
    /// </summary>
    [Fact]
    public async Task The_device_status_of_a_tunnel_that_already_stopped_ends_the_wait_at_once()
    {
        var stopped = await StoppedActor("stopped-status");
        var client = new TunnelClient(stopped, TimeSpan.FromSeconds(30));
        var late = new List<TimeSpan>();

        Assert.Null(await client.GetDeviceStatusAsync(late: late.Add).WaitAsync(TimeSpan.FromSeconds(10))); // was: TimeoutException after 10 s (the bound is 30 s)
        Assert.Empty(late);
    }

    [Fact]
    public async Task Peer_changes_of_a_tunnel_that_already_stopped_end_the_wait_at_once()
    {
        var stopped = await StoppedActor("stopped-changes");
        var client = new TunnelClient(stopped, TimeSpan.FromSeconds(30));
        var late = new List<TimeSpan>();

        Assert.Null(await client.ApplyPeerChangesAsync(new ApplyPeerChanges(false, [], []), late: late.Add).WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Empty(late);
    }

    private async Task<IActorRef> StoppedActor(string name)
    {
        var actor = Sys.ActorOf(Props.Create(() => new Silent()), name);
        await actor.GracefulStop(TimeSpan.FromSeconds(10));
        return actor;
    }

    [Fact]
    public async Task A_device_status_nobody_answers_is_waited_for_until_cancelled()
    {
        var silent = Sys.ActorOf(Props.Create(() => new Silent()), "silent");
        var client = new TunnelClient(silent, TimeSpan.FromMilliseconds(100));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetDeviceStatusAsync(cancel.Token)
            .WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(cancel.IsCancellationRequested); // not the bound of 0.1 s
    }

    /// <summary>
    /// A transaction answered after the usual bound (5 s and 1 ms a peer; thousands of peers on a
    /// busy machine) is waited for, as wireguard-go's set applies every peer before it answers.
    /// Before, the Ask ended at the bound: `wg addconf` of 10,000 peers on a daemon slowed to 1 ms
    /// of every 200 (SIGSTOP/SIGCONT) answered EIO after 25 s while the tunnel went on adding them
    /// (a review of the known gaps, 2026-11-28).
    /// </summary>
    [Fact]
    public async Task Peer_changes_answered_after_the_bound_are_waited_for_and_the_lateness_is_told_once()
    {
        var slow = Sys.ActorOf(Props.Create(() => new AnswersAfter(TimeSpan.FromSeconds(1))), "slow");
        var client = new TunnelClient(slow, TimeSpan.FromMilliseconds(100));
        var late = new List<TimeSpan>();

        var applied = await client.ApplyPeerChangesAsync(new ApplyPeerChanges(false, [], []), late: late.Add)
            .WaitAsync(TimeSpan.FromSeconds(10)); // was: AskTimeoutException after 0.1 s

        Assert.NotNull(applied);
        Assert.Equal(7, applied.Created);
        Assert.Equal([TimeSpan.FromMilliseconds(100)], late);
    }

    [Fact]
    public async Task Peer_changes_of_a_tunnel_that_stops_before_answering_end_the_wait_without_an_answer()
    {
        var stopping = Sys.ActorOf(Props.Create(() => new StopsOnChanges()), "stopping");
        var client = new TunnelClient(stopping, TimeSpan.FromMilliseconds(100));

        Assert.Null(await client.ApplyPeerChangesAsync(new ApplyPeerChanges(false, [], [])).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Peer_changes_nobody_answers_are_waited_for_until_cancelled()
    {
        var silent = Sys.ActorOf(Props.Create(() => new Silent()), "silent-changes");
        var client = new TunnelClient(silent, TimeSpan.FromMilliseconds(100));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ApplyPeerChangesAsync(new ApplyPeerChanges(false, [], []), cancel.Token)
            .WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(cancel.IsCancellationRequested); // not the bound of 0.1 s
    }

    private sealed class AnswersAfter : ReceiveActor
    {
        public AnswersAfter(TimeSpan delay) => ReceiveAsync<ApplyPeerChanges>(async _ =>
        {
            var sender = Sender;
            await Task.Delay(delay);
            sender.Tell(new PeerChangesApplied(7, 0, 0));
        });
    }

    private sealed class StopsOnChanges : ReceiveActor
    {
        public StopsOnChanges() => Receive<ApplyPeerChanges>(_ => Context.Stop(Self));
    }

    private sealed class StatusAfter : ReceiveActor
    {
        public StatusAfter(TimeSpan delay) => ReceiveAsync<GetDeviceStatus>(async _ =>
        {
            var sender = Sender;
            await Task.Delay(delay);
            sender.Tell(new DeviceStatus(default, 51820, [], new DeviceDropCounts(0, 0, 0, 0, 0, 0, 0, 0, 0)));
        });
    }

    private sealed class StopsOnStatus : ReceiveActor
    {
        public StopsOnStatus() => Receive<GetDeviceStatus>(_ => Context.Stop(Self));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<WeakReference> StatusReference(TunnelClient client)
    {
        var status = await client.GetDeviceStatusAsync();
        Assert.NotNull(status);
        Assert.Single(status.Peers);
        return new WeakReference(status);
    }

    private sealed class Silent : ReceiveActor
    {
        public Silent() => ReceiveAny(_ => { });
    }
}
