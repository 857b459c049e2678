namespace Firezone.Actors.Native.Tests;

/// <summary>
/// The netlink link listener inside a namespace the test creates: a change of a device's MTU is
/// announced, a change in another namespace is not, and Dispose stops the thread.
/// </summary>
public sealed class LinkChangeListenerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Fact]
    public void An_mtu_change_in_the_namespace_is_announced_and_one_elsewhere_is_not()
    {
        using var ns = new NetworkNamespace();
        using var other = new NetworkNamespace();
        string name = "fzl" + NetworkNamespace.UniqueSuffix();
        using var tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = 1420 }));
        using var otherTun = other.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = 1420 }));
        using var changed = new SemaphoreSlim(0);
        Exception? failure = null;
        var listener = ns.RunInside(() => new LinkChangeListener(() => changed.Release(), e => failure = e));
        try
        {
            // Another namespace's device: not this listener's business.
            Command.Check("ip", "-n", other.Name, "link", "set", name, "mtu", "1300");
            Assert.False(changed.Wait(TimeSpan.FromMilliseconds(500)), "a change in another namespace was announced");

            Command.Check("ip", "-n", ns.Name, "link", "set", name, "mtu", "1280");
            Assert.True(changed.Wait(Bound), "the MTU change was not announced");
            Assert.Equal(1280, ns.RunInside(() => NetworkInterfaceControl.GetMtu(name)));
            while (changed.Wait(TimeSpan.FromMilliseconds(200)))
            {
                // the rest of the burst, if the kernel sent more than one message
            }
            Command.Check("ip", "-n", ns.Name, "link", "set", name, "mtu", "1400");
            Assert.True(changed.Wait(Bound), "the second MTU change was not announced");
            while (changed.Wait(TimeSpan.FromMilliseconds(300)))
            {
            }
            Assert.Null(failure);
        }
        finally
        {
            listener.Dispose();
        }
        // Stopped: Dispose joined the thread, and a change now reaches nobody.
        // What the thread announced before Dispose joined it (a burst's last message, late on a
        // loaded machine after the drain's quiet) is not a change after the stop: dropped here.
        // Left counted, it failed a listener that had stopped correctly.
        while (changed.Wait(0))
        {
        }
        Command.Check("ip", "-n", ns.Name, "link", "set", name, "mtu", "1500");
        Assert.False(changed.Wait(TimeSpan.FromMilliseconds(500)), "a change was announced after Dispose");
        Assert.Null(failure);
        listener.Dispose(); // twice is fine
    }

    [Fact]
    public void A_down_of_the_watched_interface_is_reported_also_when_it_is_up_again_and_another_ones_is_not()
    {
        using var ns = new NetworkNamespace();
        string name = "fzw" + NetworkNamespace.UniqueSuffix(), other = "fzx" + NetworkNamespace.UniqueSuffix();
        using var tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = 1420 }));
        using var otherTun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = other, Mtu = 1420 }));
        int downs = 0;
        using var changed = new SemaphoreSlim(0);
        Exception? failure = null;
        using var listener = ns.RunInside(() => new LinkChangeListener(() => changed.Release(), e => failure = e, tun.Index,
            () => Interlocked.Increment(ref downs)));

        // Another interface down and up, and ours changing its MTU: no down of ours.
        Command.Check("ip", "-n", ns.Name, "link", "set", other, "down");
        Command.Check("ip", "-n", ns.Name, "link", "set", other, "up");
        Command.Check("ip", "-n", ns.Name, "link", "set", name, "mtu", "1300");
        Assert.True(changed.Wait(Bound));
        while (changed.Wait(TimeSpan.FromMilliseconds(300)))
        {
        }
        Assert.Equal(0, Volatile.Read(ref downs));

        // Ours down and up at once (one ip process): up again before anyone could look, but reported.
        string batch = Path.Combine(Path.GetTempPath(), $"fzt-{name}.ip");
        try
        {
            File.WriteAllText(batch, $"link set {name} down\nlink set {name} up\n");
            Command.Check("ip", "-n", ns.Name, "-batch", batch);
        }
        finally
        {
            File.Delete(batch);
        }
        Assert.True(ns.RunInside(() => NetworkInterfaceControl.GetLink(tun.Index)).Up);
        for (var deadline = DateTime.UtcNow + Bound; Volatile.Read(ref downs) == 0 && DateTime.UtcNow < deadline;)
        {
            changed.Wait(TimeSpan.FromMilliseconds(100));
        }
        Assert.True(Volatile.Read(ref downs) > 0, "the down was not reported");
        Assert.Null(failure);
    }
}
