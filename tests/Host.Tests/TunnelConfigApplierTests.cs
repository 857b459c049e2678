using Firezone.Actors.Host.Config;
using Firezone.Actors.Host.Control;
using Firezone.Actors.Host.Daemon;

namespace Firezone.Actors.Host.Tests;

/// <summary>Service mode's <c>wg setconf</c>: a setting the tunnel refuses names the file and line it came from (STYLE rule 11).</summary>
public sealed class TunnelConfigApplierTests
{
    private static TunnelConfig Parse(string text) => new WgQuickConfigParser().Parse("/etc/wireguard/wg0.conf", text);

    [Fact]
    public async Task A_refused_FwMark_names_the_file_and_line()
    {
        var config = Parse($"[Interface]\nPrivateKey = {TestKeys.New().ToBase64()}\n# the mark of the tunnel's datagrams\nFwMark = 0xca6c\n");
        Assert.Equal(4, config.Interface.FwMarkLine);
        var control = new InMemoryTunnelControl { FwmarkRefused = true };
        var error = await Assert.ThrowsAsync<TunnelControlException>(() => TunnelConfigApplier.ApplyAsync(config, control, CancellationToken.None));
        Assert.Equal("/etc/wireguard/wg0.conf:4: FwMark: setting fwmark 0xca6c on the UDP socket needs CAP_NET_ADMIN (run as root)", error.Message);
        Assert.Equal(1, error.Errno);
    }

    [Fact]
    public async Task A_refused_ListenPort_names_the_file_and_line()
    {
        var config = Parse($"[Interface]\nListenPort = 51820\nPrivateKey = {TestKeys.New().ToBase64()}\n");
        var control = new InMemoryTunnelControl { PortInUse = 51820 };
        var error = await Assert.ThrowsAsync<TunnelControlException>(() => TunnelConfigApplier.ApplyAsync(config, control, CancellationToken.None));
        Assert.Equal("/etc/wireguard/wg0.conf:2: ListenPort: port 51820 is in use", error.Message);
        Assert.Equal(98, error.Errno);
    }
}
