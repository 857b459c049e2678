namespace Firezone.Actors.EndToEnd.Tests.Harness;

/// <summary>The lab's fixed addresses (see the map at the top of scripts/lab/lab.sh).</summary>
public static class Addresses
{
    public const string ResourceV4 = "10.77.3.2";
    public const string ResourceV6 = "fd77:3::2";
    public const string ClientTunnelV4 = "10.77.100.2";
    public const string ClientTunnelV6 = "fd77:100::2";
    public const string GatewayTunnelV4 = "10.77.100.1";
    public const string GatewayTunnelV6 = "fd77:100::1";
    public const string GatewayUnderlayV4 = "10.77.2.2";
    public const string GatewayUnderlayV6 = "fd77:2::2";
    public const int GatewayPort = 51820;

    public static string Resource(int family) => family == 6 ? ResourceV6 : ResourceV4;
    public static string ClientTunnel(int family) => family == 6 ? ClientTunnelV6 : ClientTunnelV4;
    public static string GatewayTunnel(int family) => family == 6 ? GatewayTunnelV6 : GatewayTunnelV4;
}
