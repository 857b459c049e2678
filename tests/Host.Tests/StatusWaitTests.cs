using System.Diagnostics;
using Akka.Actor;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tunnel;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Tunnel;
using Firezone.Actors.Host.Uapi;
using DeviceStatus = Firezone.Actors.Actors.Peers.DeviceStatus;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The running tunnel's status, which every UAPI get (`wg show`, `wg showconf`), the start of every
/// set and a rebuild read (ActorTunnelControl.StatusOfAsync), is waited for past the Ask's bound:
/// `wg show` of 10,000 peers on a daemon slowed to 1 ms of every second (SIGSTOP/SIGCONT) answered EIO
/// ("Timeout after 00:00:05") where wireguard-go's get answers however long it takes (a review of
/// the known gaps, 2026-11-28). The wait ends when the tunnel answers, stops (EIO), or the request
/// or the daemon's stop cancels it; the log says once at Warning that it goes on past the bound.
/// </summary>
public sealed class StatusWaitTests
{
    private static DeviceStatus Status() => new(default, 51820, [], new DeviceDropCounts(0, 0, 0, 0, 0, 0, 0, 0, 0));

    /// <summary>A tunnel that answers a status request only after <paramref name="delay"/>.</summary>
    private sealed class SlowTunnel : ReceiveActor
    {
        public SlowTunnel(TimeSpan delay, TaskCompletionSource asked)
        {
            ReceiveAsync<GetDeviceStatus>(async _ =>
            {
                asked.TrySetResult();
                var sender = Sender;
                await Task.Delay(delay);
                sender.Tell(Status());
            });
        }
    }

    /// <summary>A tunnel that stops itself on a status request instead of answering (a tunnel that failed meanwhile).</summary>
    private sealed class StoppingTunnel : ReceiveActor
    {
        public StoppingTunnel() => Receive<GetDeviceStatus>(_ => Context.Stop(Self));
    }

    [Fact]
    public async Task A_status_reported_after_the_bound_is_waited_for_and_the_wait_is_logged_once()
    {
        using var system = ActorSystem.Create("status-wait");
        try
        {
            var tunnel = system.ActorOf(Props.Create(() => new SlowTunnel(TimeSpan.FromSeconds(1), new TaskCompletionSource())));
            var client = new TunnelClient(tunnel, TimeSpan.FromMilliseconds(100));
            var logger = new ListLogger();
            var started = Stopwatch.StartNew();

            var status = await ActorTunnelControl.StatusOfAsync(client, logger, generation: 2, "a `wg show` answers once it does", CancellationToken.None)
                .WaitAsync(TimeSpan.FromSeconds(10)); // before: AskTimeoutException at the bound, EIO

            Assert.Equal(51820, status.ListenPort);
            Assert.True(started.Elapsed >= TimeSpan.FromMilliseconds(900), $"returned after {started.ElapsedMilliseconds} ms, before the tunnel's answer");
            var warning = Assert.Single(logger.Entries, e => e.Level >= LogLevel.Warning);
            Assert.Equal(LogLevel.Warning, warning.Level);
            Assert.Equal("Tunnel 2 has not reported its status within 0.1 s; waiting for it (a `wg show` answers once it does)", warning.Message);
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task A_status_reported_in_time_logs_nothing()
    {
        using var system = ActorSystem.Create("status-wait");
        try
        {
            var tunnel = system.ActorOf(Props.Create(() => new SlowTunnel(TimeSpan.Zero, new TaskCompletionSource())));
            var logger = new ListLogger();

            await ActorTunnelControl.StatusOfAsync(new TunnelClient(tunnel, TimeSpan.FromSeconds(10)), logger, generation: 2, "a `wg show`", CancellationToken.None);

            Assert.Empty(logger.Entries);
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task A_tunnel_that_stops_before_reporting_its_status_ends_the_wait_with_EIO()
    {
        using var system = ActorSystem.Create("status-wait");
        try
        {
            var tunnel = system.ActorOf(Props.Create(() => new StoppingTunnel()));
            var client = new TunnelClient(tunnel, TimeSpan.FromMilliseconds(100));

            var error = await Assert.ThrowsAsync<TunnelControlException>(() => ActorTunnelControl.StatusOfAsync(client, new ListLogger(), generation: 3, "a `wg show`", CancellationToken.None)
                .WaitAsync(TimeSpan.FromSeconds(10)));

            Assert.Equal(UapiErrno.EIO, error.Errno);
            Assert.Equal("tunnel 3 stopped before it reported its status", error.Message);
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task The_daemons_stop_ends_the_wait_for_a_status_not_reported()
    {
        using var system = ActorSystem.Create("status-wait");
        try
        {
            var asked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var tunnel = system.ActorOf(Props.Create(() => new SlowTunnel(TimeSpan.FromMinutes(10), asked)));
            var client = new TunnelClient(tunnel, TimeSpan.FromMilliseconds(100));
            using var stopping = new CancellationTokenSource();

            var wait = ActorTunnelControl.StatusOfAsync(client, new ListLogger(), generation: 4, "a `wg show`", stopping.Token);
            await asked.Task.WaitAsync(TimeSpan.FromSeconds(10));
            await Task.Delay(300); // past the bound
            Assert.False(wait.IsCompleted);
            stopping.Cancel();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(TimeSpan.FromSeconds(10)));
        }
        finally
        {
            await system.Terminate();
        }
    }
}
