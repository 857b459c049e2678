namespace Firezone.Actors.Native.Tests;

/// <summary>
/// A TUN device is followed by its interface index, which a rename keeps: its name and MTU are read
/// from the index whatever the interface is called now, and an index whose interface was deleted is
/// ENODEV (what the host takes for a removal).
/// </summary>
public sealed class InterfaceIndexTests
{
    [Fact]
    public void The_name_and_mtu_follow_a_rename_and_a_deleted_interface_is_enodev()
    {
        using var ns = new NetworkNamespace();
        string name = "fzi" + NetworkNamespace.UniqueSuffix(), renamed = "fzj" + NetworkNamespace.UniqueSuffix();
        using var tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = 1420 }));
        Assert.Equal(ns.RunInside(() => NetworkInterfaceControl.GetIndex(name)), tun.Index);

        Command.Check("ip", "-n", ns.Name, "link", "set", name, "down");
        Command.Check("ip", "-n", ns.Name, "link", "set", name, "name", renamed);
        Command.Check("ip", "-n", ns.Name, "link", "set", renamed, "mtu", "1300");
        Assert.Equal(name, tun.Name); // the name it was created with
        Assert.Equal(renamed, ns.RunInside(() => NetworkInterfaceControl.GetName(tun.Index)));
        string current = "";
        Assert.Equal(1300, ns.RunInside(() => NetworkInterfaceControl.GetMtu(tun.Index, out current)));
        Assert.Equal(renamed, current);

        Command.Check("ip", "-n", ns.Name, "link", "delete", renamed);
        var gone = Assert.Throws<TunDeviceException>(() => ns.RunInside(() => NetworkInterfaceControl.GetMtu(tun.Index, out _)));
        Assert.Equal(Tmds.Linux.LibC.ENODEV, gone.Errno);
        Assert.Contains($"index {tun.Index}", gone.Message);
        Assert.False(tun.IsAttached());
    }

    [Fact]
    public void The_link_state_follows_ip_link_set_up_and_down_and_a_moved_interface_is_still_attached()
    {
        using var ns = new NetworkNamespace();
        using var elsewhere = new NetworkNamespace();
        string name = "fzs" + NetworkNamespace.UniqueSuffix();
        using var tun = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = 1420, BringUp = true }));
        Assert.Equal(new LinkState(name, 1420, Up: true), ns.RunInside(() => NetworkInterfaceControl.GetLink(tun.Index)));
        Command.Check("ip", "-n", ns.Name, "link", "set", name, "down");
        Assert.Equal(new LinkState(name, 1420, Up: false), ns.RunInside(() => NetworkInterfaceControl.GetLink(tun.Index)));

        // In another namespace this one has no interface of its index, but the descriptor is attached.
        Command.Check("ip", "-n", ns.Name, "link", "set", name, "netns", elsewhere.Name);
        var moved = Assert.Throws<TunDeviceException>(() => ns.RunInside(() => NetworkInterfaceControl.GetLink(tun.Index)));
        Assert.Equal(Tmds.Linux.LibC.ENODEV, moved.Errno);
        Assert.True(tun.IsAttached());
        Command.Check("ip", "-n", elsewhere.Name, "link", "delete", name);
        Assert.False(tun.IsAttached());
    }
}
