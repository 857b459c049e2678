namespace Firezone.Actors.Native.Tests;

/// <summary>
/// The address listener inside a namespace the test creates: an address added to or removed from
/// the watched interface is announced, one of another interface is not, and Dispose stops the thread.
/// </summary>
public sealed class AddressChangeListenerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(500);

    private static void Drain(SemaphoreSlim changed)
    {
        while (changed.Wait(TimeSpan.FromMilliseconds(300)))
        {
            // the rest of the burst: an IPv6 address comes with its route and flags
        }
    }

    [Fact]
    public void An_address_added_to_or_removed_from_the_interface_is_announced_and_one_of_another_interface_is_not()
    {
        using var ns = new NetworkNamespace();
        void Ip(params string[] arguments) => Command.Check("ip", ["netns", "exec", ns.Name, "ip", .. arguments]);
        Ip("link", "add", "fzwatch", "type", "veth", "peer", "name", "fzother");
        Ip("link", "set", "fzwatch", "up");
        Ip("link", "set", "fzother", "up");
        int index = ns.RunInside(() => NetworkInterfaceControl.GetIndex("fzwatch"));
        using var changed = new SemaphoreSlim(0);
        Exception? failure = null;
        var listener = ns.RunInside(() => new AddressChangeListener(index, () => changed.Release(), e => failure = e));
        try
        {
            Ip("address", "add", "10.91.0.2/24", "dev", "fzother");
            Assert.False(changed.Wait(Quiet), "another interface's address was announced");

            Ip("address", "add", "10.91.1.2/24", "dev", "fzwatch");
            Assert.True(changed.Wait(Bound), "the added IPv4 address was not announced");
            Drain(changed);
            Ip("-6", "address", "add", "fd00:91::2/64", "dev", "fzwatch", "nodad");
            Assert.True(changed.Wait(Bound), "the added IPv6 address was not announced");
            Drain(changed);
            Ip("address", "del", "10.91.1.2/24", "dev", "fzwatch");
            Assert.True(changed.Wait(Bound), "the removal was not announced");
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
        Ip("address", "add", "10.91.2.2/24", "dev", "fzwatch");
        Assert.False(changed.Wait(Quiet));
    }
}
