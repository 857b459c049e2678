namespace Firezone.Actors.Native.Tests;

/// <summary>
/// The nftables listener inside a namespace the test creates: a table added or flushed away there
/// is announced, a change in another namespace is not, and Dispose stops the thread.
/// </summary>
public sealed class NftablesChangeListenerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static void Drain(SemaphoreSlim changed)
    {
        while (changed.Wait(TimeSpan.FromMilliseconds(300)))
        {
            // the rest of the burst: nft sends one message per object
        }
    }

    [Fact]
    public void A_table_added_or_flushed_in_the_namespace_is_announced_and_one_elsewhere_is_not()
    {
        using var ns = new NetworkNamespace();
        using var other = new NetworkNamespace();
        using var changed = new SemaphoreSlim(0);
        Exception? failure = null;
        var listener = ns.RunInside(() => new NftablesChangeListener(() => changed.Release(), e => failure = e));
        try
        {
            Command.Check("ip", "netns", "exec", other.Name, "nft", "add", "table", "inet", "fzt-elsewhere");
            Assert.False(changed.Wait(TimeSpan.FromMilliseconds(500)), "a change in another namespace was announced");

            Command.Check("ip", "netns", "exec", ns.Name, "nft", "add", "table", "inet", "fzt-here");
            Assert.True(changed.Wait(Bound), "the new table was not announced");
            Drain(changed);
            Command.Check("ip", "netns", "exec", ns.Name, "nft", "flush", "ruleset");
            Assert.True(changed.Wait(Bound), "the ruleset flush was not announced");
            Drain(changed);
            Assert.Null(failure);
        }
        finally
        {
            listener.Dispose();
        }
        // Stopped: nothing more is heard.
        // What the thread announced before Dispose joined it (a burst's last message, late on a
        // loaded machine after the drain's quiet) is not a change after the stop: dropped here.
        // Left counted, it failed a listener that had stopped correctly.
        while (changed.Wait(0))
        {
        }
        Command.Check("ip", "netns", "exec", ns.Name, "nft", "add", "table", "inet", "fzt-after");
        Assert.False(changed.Wait(TimeSpan.FromMilliseconds(500)));
    }
}
