namespace Firezone.Actors.Native.Tests;

/// <summary>
/// The route listener inside a namespace the test creates: a route added or removed through an
/// interface is announced, one through the ignored interface (the tunnel's own) is not, and
/// Dispose stops the thread.
/// </summary>
public sealed class RouteChangeListenerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(500);

    private static void Drain(SemaphoreSlim changed)
    {
        while (changed.Wait(TimeSpan.FromMilliseconds(300)))
        {
            // the rest of the burst
        }
    }

    [Fact]
    public void A_route_of_another_interface_is_announced_and_one_of_the_ignored_interface_is_not()
    {
        using var ns = new NetworkNamespace();
        void Ip(params string[] arguments) => Command.Check("ip", ["netns", "exec", ns.Name, "ip", .. arguments]);
        Ip("link", "add", "fzuplink", "type", "veth", "peer", "name", "fztunnel");
        Ip("link", "set", "fzuplink", "up");
        Ip("link", "set", "fztunnel", "up");
        Ip("address", "add", "10.92.0.2/24", "dev", "fzuplink");
        int ignored = ns.RunInside(() => NetworkInterfaceControl.GetIndex("fztunnel"));
        using var changed = new SemaphoreSlim(0);
        Exception? failure = null;
        var listener = ns.RunInside(() => new RouteChangeListener(ignored, () => changed.Release(), e => failure = e));
        try
        {
            Ip("route", "add", "10.93.0.0/24", "dev", "fztunnel");
            Ip("-6", "route", "add", "fd93::/64", "dev", "fztunnel");
            Assert.False(changed.Wait(Quiet), "a route of the ignored interface was announced");

            Ip("route", "add", "default", "via", "10.92.0.1", "dev", "fzuplink");
            Assert.True(changed.Wait(Bound), "the new default route was not announced");
            Drain(changed);
            Ip("route", "replace", "default", "via", "10.92.0.3", "dev", "fzuplink");
            Assert.True(changed.Wait(Bound), "the replaced default route was not announced");
            Drain(changed);
            Ip("route", "del", "default");
            Assert.True(changed.Wait(Bound), "the removal was not announced");
            Drain(changed);
            Assert.Null(failure);
        }
        finally
        {
            listener.Dispose();
        }
        // Stopped: nothing more is heard.
        Ip("route", "add", "default", "via", "10.92.0.1", "dev", "fzuplink");
        Assert.False(changed.Wait(Quiet));
    }
}
