using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// TestKit with the TestScheduler (timers move only when a test advances them, together with the
/// manual clock), a fake network, and helpers that stop topologies and assert that every pooled
/// buffer came back (the way wireguard-go guards its tests against goroutine leaks).
/// </summary>
public abstract class ActorTestBase : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Config TestConfig = ConfigurationFactory.ParseString("""
        akka.scheduler.implementation = "Akka.TestKit.TestScheduler, Akka.TestKit"
        akka.log-dead-letters = off
        akka.log-dead-letters-during-shutdown = off
        akka.loglevel = INFO
        """);

    protected static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    protected ActorTestBase(ITestOutputHelper output) : base(TestConfig, output: output)
    {
    }

    /// <summary>With <paramref name="overrides"/> (HOCON, e.g. <c>akka.loglevel = DEBUG</c>) over the test configuration.</summary>
    protected ActorTestBase(ITestOutputHelper output, string overrides)
        : base(ConfigurationFactory.ParseString(overrides).WithFallback(TestConfig), output: output)
    {
    }

    protected ManualClock Clock { get; } = new(TimeSpan.FromMinutes(10));

    protected FakeNetwork Network { get; } = new();

    protected TestScheduler Scheduler => (TestScheduler)Sys.Scheduler;

    /// <summary>Moves the injected clock and the scheduler together.</summary>
    protected void AdvanceTime(TimeSpan by)
    {
        Clock.Advance(by);
        Scheduler.Advance(by);
    }

    protected TunnelNode StartNode(string name, int index, PeerSupervisorOptions? options = null, TimeSpan replyPollMax = default, TimeSpan readerStopBound = default) =>
        TunnelNode.Start(Sys, Network, Clock, name, index, TestActor, options, replyPollMax, readerStopBound: readerStopBound);

    /// <summary>A and B, each the other's peer; A knows B's endpoint and initiates (with a persistent keepalive of <paramref name="keepalive"/> seconds).</summary>
    protected (TunnelNode A, TunnelNode B) StartPair(ushort keepalive = 0)
    {
        var a = StartNode("a", 1);
        var b = StartNode("b", 2);
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b, keepalive: keepalive)));
        return (a, b);
    }

    /// <summary>A in the middle, B and C its peers (A knows their endpoints and initiates).</summary>
    protected (TunnelNode A, TunnelNode B, TunnelNode C) StartStar(PeerSupervisorOptions? options = null)
    {
        var a = StartNode("a", 1, options);
        var b = StartNode("b", 2);
        var c = StartNode("c", 3);
        Control<PeerConfigured>(b, new AddOrUpdatePeer(b.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(c, new AddOrUpdatePeer(c.PeerConfigFor(a, withEndpoint: false)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(b)));
        Control<PeerConfigured>(a, new AddOrUpdatePeer(a.PeerConfigFor(c)));
        return (a, b, c);
    }

    protected T Control<T>(TunnelNode node, object message)
    {
        var probe = CreateTestProbe();
        node.Tunnel.Tell(message, probe.Ref);
        return probe.ExpectMsg<T>(Wait);
    }

    protected PeerStatus PeerStatusOf(TunnelNode node, TunnelNode remote) => Control<PeerStatus>(node, new GetPeerStatus(remote.PublicKey));

    /// <summary>
    /// Call before moving time when a reader thread stepped <paramref name="node"/>'s peer
    /// <paramref name="remote"/> (its first packet, which starts the handshake): the reader only asks
    /// the peer's PeerConnection to arm the engine's timer (RearmPeerTimer), and the actor arms it
    /// when it gets to that message. Handled after the move, the request arms a timer for a deadline
    /// already past, which the TestScheduler fires only at the next move. A status request through
    /// the same mailbox is answered after the re-arm request was handled.
    /// </summary>
    protected void AwaitPeerTimerArmed(TunnelNode node, TunnelNode remote) => PeerStatusOf(node, remote);

    protected void AwaitWritten(TunnelNode node, int count) =>
        AwaitCondition(() => node.Tun.WrittenCount >= count, Wait, $"{node.Name}'s TUN to receive {count} packets (has {node.Tun.WrittenCount})");

    /// <summary>Stops the tunnels, waits until they are gone, then asserts every buffer was returned.</summary>
    protected void StopAndAssertNoLeaks(params TunnelNode[] nodes)
    {
        var probe = CreateTestProbe();
        foreach (var node in nodes)
        {
            probe.Watch(node.Tunnel);
            Sys.Stop(node.Tunnel);
        }
        foreach (var _ in nodes)
        {
            probe.ExpectMsg<Terminated>(Wait);
        }
        foreach (var node in nodes)
        {
            AwaitCondition(() => node.Pool.Outstanding == 0, Wait, $"{node.Name}: {node.Pool.Outstanding} buffers still leased after stop");
        }
    }
}
