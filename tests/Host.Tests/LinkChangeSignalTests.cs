using Firezone.Actors.Host.Tunnel;
using Microsoft.Extensions.Logging;

namespace Firezone.Actors.Host.Tests;

/// <summary>
/// The signal ActorTunnelControl re-reads the TUN's MTU on: the kernel's link announcements while
/// they work, a poll when they cannot be opened or fail later (logged), one pending signal per
/// burst, and no more polls after Dispose. The listener here is a stand-in; LinkChangeListenerTests
/// covers the netlink one.
/// </summary>
public sealed class LinkChangeSignalTests
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    /// <summary>A listener the test drives: it announces changes and failures when told to.</summary>
    private sealed class FakeListener : IDisposable
    {
        public Action Changed { get; private set; } = () => { };
        public Action<Exception> Failed { get; private set; } = _ => { };
        public int Disposals;

        public IDisposable Listen(Action changed, Action<Exception> failed)
        {
            Changed = changed;
            Failed = failed;
            return this;
        }

        public void Dispose() => Interlocked.Increment(ref Disposals);
    }

    private static async Task<bool> SignalledAsync(LinkChangeSignal signal, TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        try
        {
            await signal.WaitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [Fact]
    public async Task Announced_changes_signal_once_per_burst_and_nothing_polls()
    {
        var fake = new FakeListener();
        var logger = new ListLogger();
        using var signal = new LinkChangeSignal("fz0", logger, Poll, fake.Listen);
        Assert.False(signal.Polling);
        Assert.False(await SignalledAsync(signal, TimeSpan.FromMilliseconds(300)), "signalled without a change (polling?)");

        fake.Changed();
        fake.Changed();
        fake.Changed();
        Assert.True(await SignalledAsync(signal, Bound));
        // The burst left one signal, not three.
        Assert.False(await SignalledAsync(signal, TimeSpan.FromMilliseconds(200)));
        Assert.Empty(logger.At(LogLevel.Warning));
    }

    [Fact]
    public async Task A_listener_that_cannot_be_opened_falls_back_to_polling_and_says_why()
    {
        var logger = new ListLogger();
        using var signal = new LinkChangeSignal("fz1", logger, Poll,
            (_, _) => throw new IOException("link change listener: opening a NETLINK_ROUTE socket failed: EMFILE"));
        Assert.True(signal.Polling);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(await SignalledAsync(signal, Bound), $"poll {i} did not signal");
        }
        string warning = Assert.Single(logger.At(LogLevel.Warning));
        Assert.Contains("fz1", warning);
        Assert.Contains("polling", warning);
        Assert.Contains("EMFILE", warning);
    }

    [Fact]
    public async Task A_listener_that_fails_later_is_released_and_polling_takes_over()
    {
        var fake = new FakeListener();
        var logger = new ListLogger();
        using var signal = new LinkChangeSignal("fz2", logger, Poll, fake.Listen);
        Assert.False(signal.Polling);

        fake.Failed(new IOException("link change listener: reading failed: ENOTSOCK"));
        Assert.True(signal.Polling);
        Assert.Equal(1, fake.Disposals);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(await SignalledAsync(signal, Bound), $"poll {i} did not signal");
        }
        Assert.Contains("ENOTSOCK", Assert.Single(logger.At(LogLevel.Warning)));
    }

    [Fact]
    public async Task A_listener_that_fails_while_it_is_being_opened_is_not_kept()
    {
        var fake = new FakeListener();
        using var signal = new LinkChangeSignal("fz3", new ListLogger(), Poll, (changed, failed) =>
        {
            var listener = fake.Listen(changed, failed);
            failed(new IOException("failed at once")); // its thread failed before the constructor returned
            return listener;
        });
        Assert.True(signal.Polling);
        Assert.Equal(1, fake.Disposals); // released once: the failed listener is not kept
        Assert.True(await SignalledAsync(signal, Bound));
    }

    [Fact]
    public async Task Dispose_stops_the_listener_and_the_poll()
    {
        var fake = new FakeListener();
        var signal = new LinkChangeSignal("fz4", new ListLogger(), Poll, fake.Listen);
        signal.Dispose();
        Assert.Equal(1, fake.Disposals);

        var polling = new LinkChangeSignal("fz5", new ListLogger(), Poll, (_, _) => throw new IOException("no netlink"));
        Assert.True(await SignalledAsync(polling, Bound));
        polling.Dispose();
        while (await SignalledAsync(polling, TimeSpan.FromMilliseconds(20)))
        {
            // a signal that was pending at Dispose
        }
        Assert.False(await SignalledAsync(polling, TimeSpan.FromMilliseconds(300)), "the poll went on after Dispose");
        polling.Dispose(); // twice is fine
        signal.Dispose();
        Assert.Equal(1, fake.Disposals);
    }
}
