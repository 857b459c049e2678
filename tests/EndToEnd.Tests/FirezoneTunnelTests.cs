using Firezone.Actors.EndToEnd.Tests.Harness;
using Xunit.Abstractions;

namespace Firezone.Actors.EndToEnd.Tests;

/// <summary>firezone-tunnel as Client and as Gateway: reachability and bulk data, over both underlay families.</summary>
public sealed class FirezoneTunnelTests(ITestOutputHelper output)
{
    private const string Fz = Implementations.FirezoneTunnel;

    [Theory]
    [InlineData(4)]
    [InlineData(6)]
    public void PingBothWays_IPv4AndIPv6Inside(int underlay)
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(60), underlay);
        lab.Gateway.Start(Fz);
        lab.Client.Start(Fz);

        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV4, 3), "client -> resource, IPv4 inner");
        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV6, 3), "client -> resource, IPv6 inner");
        Assert.True(lab.Ping(Roles.Client, Addresses.GatewayTunnelV4, 3), "client -> gateway tunnel address");
        Assert.True(lab.Ping(Roles.Gateway, Addresses.ClientTunnelV4, 3), "gateway -> client, IPv4 inner");
        Assert.True(lab.Ping(Roles.Gateway, Addresses.ClientTunnelV6, 3), "gateway -> client, IPv6 inner");
        Assert.True(lab.Ping(Roles.Resource, Addresses.ClientTunnelV4, 3), "resource -> client, IPv4 inner");
        Assert.True(lab.Ping(Roles.Resource, Addresses.ClientTunnelV6, 3), "resource -> client, IPv6 inner");

        // The gateway learnt the client's endpoint from authenticated packets of the chosen family.
        var expected = underlay == 6 ? "[fd77:1::2]:51821" : "10.77.1.2:51821";
        Assert.Equal(expected, lab.Gateway.PeerEndpoint);
        Assert.True(lab.Client.LatestHandshake > 0);
    }

    [Theory]
    [InlineData(4, 4)]
    [InlineData(6, 4)]
    [InlineData(4, 6)]
    [InlineData(6, 6)]
    public void FiftyMegabyteTcpTransfer_ChecksumMatches(int inner, int underlay)
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(150), underlay);
        lab.Gateway.Start(Fz);
        lab.Client.Start(Fz);

        var result = lab.SendAndVerify(Roles.Client, Roles.Resource, Addresses.Resource(inner), 50_000_000, TimeSpan.FromSeconds(120));
        lab.Log($"50 MB in {result.Elapsed.TotalSeconds:0.0} s ({50 / result.Elapsed.TotalSeconds:0.0} MB/s)");
    }
}
