namespace Firezone.Actors.Native.Tests;

/// <summary>What a user sees when a TUN device cannot be made.</summary>
public sealed class TunDeviceErrorTests
{
    [Fact]
    public void A_name_longer_than_15_bytes_is_refused_before_any_system_call()
    {
        var error = Assert.Throws<TunDeviceException>(() => new LinuxTunDevice(new TunDeviceOptions { Name = "fz-name-too-long" }));
        Assert.Equal("TUN device name 'fz-name-too-long' is too long: 16 bytes, at most 15 allowed", error.Message);
        Assert.Equal(0, error.Errno);
    }

    [Fact]
    public void A_name_with_a_slash_is_refused()
    {
        var error = Assert.Throws<TunDeviceException>(() => new LinuxTunDevice(new TunDeviceOptions { Name = "fz/1" }));
        Assert.Equal("TUN device name 'fz/1' is not a valid interface name: no '/', ':' or whitespace allowed", error.Message);
    }

    [Fact]
    public void A_name_already_in_use_says_so()
    {
        using var ns = new NetworkNamespace();
        string name = "fzt" + NetworkNamespace.UniqueSuffix();
        using LinuxTunDevice first = ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, BringUp = false }));
        var error = Assert.Throws<TunDeviceException>(() =>
            ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, BringUp = false })));
        Assert.Equal($"TUN device name {name} is already in use (another process has it open)", error.Message);
        Assert.Equal(16, error.Errno); // EBUSY
    }

    [Fact]
    public void A_name_held_by_an_interface_that_is_not_TUN_says_so()
    {
        using var ns = new NetworkNamespace();
        var error = Assert.Throws<TunDeviceException>(() =>
            ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = "lo" })));
        Assert.Equal("cannot create TUN device lo: an interface with that name exists and is not a TUN device this daemon can use (see ip -d link show lo); choose another name or remove it", error.Message);
    }

    /// <summary>
    /// A veth holding the name (the new-user walk-through's case): the name passed the checks, so the
    /// message says what holds it rather than that it may be invalid.
    /// </summary>
    [Fact]
    public void A_name_held_by_a_veth_says_an_interface_has_it()
    {
        using var ns = new NetworkNamespace();
        string name = "fzv" + NetworkNamespace.UniqueSuffix();
        Command.Check("ip", "-n", ns.Name, "link", "add", name, "type", "veth", "peer", "name", name + "p");
        var error = Assert.Throws<TunDeviceException>(() =>
            ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, BringUp = false })));
        Assert.Equal($"cannot create TUN device {name}: an interface with that name exists and is not a TUN device this daemon can use (see ip -d link show {name}); choose another name or remove it", error.Message);
        Assert.Equal(22, error.Errno); // EINVAL
    }

    /// <summary>
    /// EPERM for real: the creating thread drops CAP_NET_ADMIN from its effective set (capset(2) on
    /// that thread only, inside a test namespace), then asks for a TUN device.
    /// </summary>
    [Fact]
    public void Without_CAP_NET_ADMIN_the_user_is_told_to_run_as_root()
    {
        using var ns = new NetworkNamespace();
        string name = "fzt" + NetworkNamespace.UniqueSuffix();
        var error = Assert.Throws<TunDeviceException>(() => ns.RunInside(() =>
        {
            ThreadCapabilities.DropEffective(ThreadCapabilities.CAP_NET_ADMIN);
            return new LinuxTunDevice(new TunDeviceOptions { Name = name });
        }));
        Assert.Equal($"creating TUN device {name} needs CAP_NET_ADMIN (run as root)", error.Message);
        Assert.Equal(1, error.Errno); // EPERM
    }

    /// <summary>No /dev/net/tun cannot be staged safely on a shared machine, so the mapping is checked directly.</summary>
    [Theory]
    [InlineData(2, "/dev/net/tun does not exist: load the tun module (modprobe tun); in a container, give it the device (docker run --device /dev/net/tun)")] // ENOENT
    [InlineData(19, "/dev/net/tun has no driver behind it: load the tun module (modprobe tun)")] // ENODEV
    [InlineData(13, "cannot open /dev/net/tun: permission denied (run as root, or give the process CAP_NET_ADMIN)")] // EACCES
    public void Opening_dev_net_tun_failures_read_as_advice(int errno, string message)
    {
        Assert.Equal(message, TunErrors.OpenFailed(errno));
    }

    [Fact]
    public void A_bad_MTU_is_reported_with_the_interface_name()
    {
        using var ns = new NetworkNamespace();
        string name = "fzt" + NetworkNamespace.UniqueSuffix();
        var error = Assert.Throws<TunDeviceException>(() =>
            ns.RunInside(() => new LinuxTunDevice(new TunDeviceOptions { Name = name, Mtu = 70000 })));
        Assert.Equal($"setting MTU 70000 on {name} failed: the MTU is out of range for this interface", error.Message);
        // The half-made device was closed again, so it is gone.
        Assert.NotEqual(0, Command.Run("ip", "-n", ns.Name, "link", "show", "dev", name).ExitCode);
    }
}
