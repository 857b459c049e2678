namespace Firezone.Actors.Native.Tests;

/// <summary>
/// The route listener inside a namespace the test creates: a route added or removed through an
/// interface is announced, one through the ignored interface (the tunnel's own) is not, nor are
/// the routes that come with the host's own addresses and interfaces, and Dispose stops the thread.
/// </summary>
public sealed class RouteChangeListenerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(500);

    private static void IpIn(NetworkNamespace ns, string[] arguments) => Command.Check("ip", ["netns", "exec", ns.Name, "ip", .. arguments]);

    /// <summary>
    /// A namespace with a veth pair, fzuplink and <paramref name="peer"/>, both up; without duplicate
    /// address detection, so link-local addresses (and their local routes) come at once.
    /// </summary>
    private static NetworkNamespace NamespaceWithUplink(string peer)
    {
        var ns = new NetworkNamespace();
        try
        {
            Command.Check("ip", ["netns", "exec", ns.Name, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"]);
            IpIn(ns, ["link", "add", "fzuplink", "type", "veth", "peer", "name", peer]);
            IpIn(ns, ["link", "set", "fzuplink", "up"]);
            IpIn(ns, ["link", "set", peer, "up"]);
            return ns;
        }
        catch
        {
            ns.Dispose();
            throw;
        }
    }

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
        using var ns = NamespaceWithUplink("fztunnel");
        void Ip(params string[] arguments) => IpIn(ns, arguments);
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
        // What the thread announced before Dispose joined it (a burst's last message, late on a
        // loaded machine after the drain's quiet) is not a change after the stop: dropped here.
        // Left counted, it failed a listener that had stopped correctly.
        while (changed.Wait(0))
        {
        }
        Ip("route", "add", "default", "via", "10.92.0.1", "dev", "fzuplink");
        Assert.False(changed.Wait(Quiet));
    }

    /// <summary>
    /// A multi-homed Gateway answered a Client from the other uplink's address (which the Client's
    /// stateful firewall dropped) after a container started (the kernel announces fe80::/64, the
    /// link-local address and ff00::/8 of its veth) or an address was added (its local, broadcast and
    /// anycast routes): none of these is the way to a peer. A route to a prefix still is.
    /// </summary>
    [Fact]
    public void Routes_of_the_hosts_own_addresses_and_of_a_new_interface_are_not_announced()
    {
        using var ns = NamespaceWithUplink("fzpeer");
        void Ip(params string[] arguments) => IpIn(ns, arguments);
        using var changed = new SemaphoreSlim(0);
        Exception? failure = null;
        var listener = ns.RunInside(() => new RouteChangeListener(0, () => changed.Release(), e => failure = e));
        try
        {
            Ip("link", "add", "fzveth0", "type", "veth", "peer", "name", "fzveth1");
            Ip("link", "set", "fzveth0", "up");
            Ip("link", "set", "fzveth1", "up");
            Assert.False(changed.Wait(TimeSpan.FromSeconds(1)), "the link-local, local or multicast routes of a new interface were announced");
            Ip("-6", "address", "add", "fd95::2/64", "dev", "fzuplink", "noprefixroute", "nodad");
            Ip("address", "add", "10.95.0.2/24", "dev", "fzuplink", "noprefixroute");
            Assert.False(changed.Wait(Quiet), "the local, broadcast or anycast routes of an added address were announced");
            Ip("-6", "address", "del", "fd95::2/64", "dev", "fzuplink");
            Assert.False(changed.Wait(Quiet), "the local routes of a removed address were announced");

            Ip("-6", "route", "add", "fd96::/64", "via", "fe80::1", "dev", "fzuplink");
            Assert.True(changed.Wait(Bound), "a route to a prefix was not announced");
            Drain(changed);
            Ip("-6", "route", "add", "default", "via", "fe80::1", "dev", "fzuplink");
            Assert.True(changed.Wait(Bound), "a default route via a link-local router was not announced");
            Drain(changed);
            Assert.Null(failure);
        }
        finally
        {
            listener.Dispose();
        }
    }

    /// <summary>
    /// The kernel announces an IPv6 route replaced by an identical one, or by one that differs only
    /// in its lifetime (a program that re-installs its routes, a router advertisement's route
    /// refreshed that way): the routes are the same, so the peers keep their source addresses (a
    /// multi-homed Gateway answered from its other address until the Client sent again).
    /// </summary>
    [Fact]
    public void A_route_replaced_by_an_identical_one_is_not_announced_and_a_changed_one_is()
    {
        using var ns = NamespaceWithUplink("fzpeer");
        void Ip(params string[] arguments) => IpIn(ns, arguments);
        Ip("address", "add", "10.97.0.2/24", "dev", "fzuplink");
        using var changed = new SemaphoreSlim(0);
        Exception? failure = null;
        var listener = ns.RunInside(() => new RouteChangeListener(0, () => changed.Release(), e => failure = e));
        try
        {
            Ip("-6", "route", "add", "fd97::/64", "via", "fe80::1", "dev", "fzuplink");
            Assert.True(changed.Wait(Bound), "a new route was not announced");
            Drain(changed);
            Ip("-6", "route", "replace", "fd97::/64", "via", "fe80::1", "dev", "fzuplink");
            Assert.False(changed.Wait(Quiet), "an IPv6 route replaced by an identical one was announced");
            Ip("-6", "route", "replace", "fd97::/64", "via", "fe80::2", "dev", "fzuplink");
            Assert.True(changed.Wait(Bound), "a route with another gateway was not announced");
            Drain(changed);

            Ip("-6", "route", "add", "fd98::/64", "via", "fe80::1", "dev", "fzuplink", "expires", "60");
            Assert.True(changed.Wait(Bound), "a route with a lifetime was not announced");
            Drain(changed);
            Ip("-6", "route", "replace", "fd98::/64", "via", "fe80::1", "dev", "fzuplink", "expires", "120");
            Assert.False(changed.Wait(Quiet), "a route whose lifetime alone was renewed was announced");

            Ip("route", "add", "10.98.0.0/24", "via", "10.97.0.1", "dev", "fzuplink", "metric", "10");
            Assert.True(changed.Wait(Bound), "a new IPv4 route was not announced");
            Drain(changed);
            Ip("route", "replace", "10.98.0.0/24", "via", "10.97.0.1", "dev", "fzuplink", "metric", "10");
            Assert.False(changed.Wait(Quiet), "an IPv4 route replaced by an identical one was announced");
            Ip("route", "del", "10.98.0.0/24");
            Assert.True(changed.Wait(Bound), "a removed route was not announced");
            Drain(changed);
            Assert.Null(failure);
        }
        finally
        {
            listener.Dispose();
        }
    }

    /// <summary>The digest of the routes: the same for the same routes, another for a route more, the same again once it is gone.</summary>
    [Fact]
    public void The_routes_digest_changes_with_the_routes_and_not_with_their_lifetimes_or_the_ignored_interface()
    {
        using var ns = NamespaceWithUplink("fztunnel");
        void Ip(params string[] arguments) => IpIn(ns, arguments);
        Ip("address", "add", "10.99.0.2/24", "dev", "fzuplink");
        int ignored = ns.RunInside(() => NetworkInterfaceControl.GetIndex("fztunnel"));
        ulong? Take() => ns.RunInside(() => RouteTableFingerprint.Take(ignored, out bool tooMany) is { } digest && !tooMany ? digest : (ulong?)null);

        ulong? first = Take();
        Assert.NotNull(first);
        Assert.Equal(first, Take());
        Ip("route", "add", "10.100.0.0/24", "dev", "fztunnel");
        Ip("-6", "route", "add", "fd99::/64", "dev", "fztunnel");
        Assert.Equal(first, Take());
        Ip("-6", "route", "add", "fd9a::/64", "via", "fe80::1", "dev", "fzuplink", "expires", "30");
        ulong? withRoute = Take();
        Assert.NotEqual(first, withRoute);
        Thread.Sleep(1_100); // the lifetime left is one second less
        Assert.Equal(withRoute, Take());
        Ip("-6", "route", "del", "fd9a::/64");
        Assert.Equal(first, Take());
        Ip("route", "add", "default", "via", "10.99.0.1", "dev", "fzuplink", "metric", "5");
        ulong? withDefault = Take();
        Assert.NotEqual(first, withDefault);
        Ip("route", "replace", "default", "via", "10.99.0.1", "dev", "fzuplink", "metric", "5");
        Assert.Equal(withDefault, Take());
        Ip("route", "add", "default", "via", "10.99.0.1", "dev", "fzuplink", "metric", "7");
        Assert.NotEqual(withDefault, Take());
    }
}
