using Firezone.Actors.EndToEnd.Tests.Harness;
using Xunit.Abstractions;
using static Firezone.Actors.EndToEnd.Tests.Harness.CounterSnapshot;

namespace Firezone.Actors.EndToEnd.Tests;

/// <summary>
/// firezone-tunnel against Debian's wireguard-go (a peer nobody here wrote), each in either role,
/// configured with the same `wg set` commands.
/// </summary>
public sealed class InteropTests(ITestOutputHelper output)
{
    private const string Fz = Implementations.FirezoneTunnel;
    private const string Wgo = Implementations.WireGuardGo;

    public static TheoryData<string, string, string> Initiators => new()
    {
        { Fz, Wgo, Roles.Client },
        { Fz, Wgo, Roles.Gateway },
        { Wgo, Fz, Roles.Client },
        { Wgo, Fz, Roles.Gateway },
    };

    [Theory]
    [MemberData(nameof(Initiators))]
    public void EitherSideInitiates_DataBothWaysIntact(string client, string gateway, string initiator)
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(90));
        // Only the initiator is given the other's endpoint, so only it can send the first message
        // (firezone-tunnel initiates as soon as a peer with an endpoint is configured, wireguard-go
        // on the first packet to send; either way the initiator is the chosen side).
        lab.SetOption("ENDPOINTS", initiator);
        // The gateway-initiated cases also use a preshared key (whitepaper 5.2, the optional PSK).
        if (initiator == Roles.Gateway)
        {
            lab.SetOption("PSK", "1");
        }
        var before = lab.Counters();
        // The responder listens before the initiator can send its first initiation.
        if (initiator == Roles.Client)
        {
            lab.Gateway.Start(gateway);
            lab.Client.Start(client);
        }
        else
        {
            lab.Client.Start(client);
            lab.Gateway.Start(gateway);
        }

        var reached = initiator == Roles.Client
            ? lab.Ping(Roles.Client, Addresses.ResourceV4, 3)
            : lab.Ping(Roles.Gateway, Addresses.ClientTunnelV4, 3);
        Assert.True(reached, $"first ping from the {initiator}");
        var after = lab.Counters();
        var (mine, theirs) = initiator == Roles.Client ? ("c2g", "g2c") : ("g2c", "c2g");
        Assert.True(after.Since(before, HandshakeInitiations(mine)) >= 1, after.ToString());
        Assert.Equal(0, after.Since(before, HandshakeInitiations(theirs)));

        lab.SendAndVerify(Roles.Client, Roles.Resource, Addresses.ResourceV4, 10_000_000, TimeSpan.FromSeconds(60));
        lab.StartTransfer(Roles.Resource, Addresses.ResourceV4, "send", Roles.Client, 10_000_000)
            .Wait(TimeSpan.FromSeconds(60)).AssertIntact(10_000_000);
    }

    /// <summary>
    /// A Gateway whose Client has not connected yet (no endpoint for it) holds what is routed to it,
    /// as wireguard-go does, and sends it once the Client's handshake is confirmed: a ping sent from
    /// the Gateway's side before the Client starts is answered. Against wireguard-go as the Gateway
    /// too, to show it is the reference's behaviour.
    /// </summary>
    [Theory]
    [InlineData(Fz)]
    [InlineData(Wgo)]
    public void PacketForAClientNotConnectedYet_DeliveredOnceItConnects(string gateway)
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(60));
        lab.SetOption("ENDPOINTS", Roles.Client); // the Gateway has no endpoint for its Client
        lab.Gateway.Start(gateway);
        lab.Background(Roles.Gateway, "early-ping", "ping", "-n", "-c", "1", "-W", "25", Addresses.ClientTunnelV4);
        Thread.Sleep(1500); // the echo request waits in the Gateway
        lab.Client.Start(Fz);
        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV4, 3), "the Client's own ping (its handshake)");
        Assert.True(lab.WaitUntil(() => lab.BackgroundOutput("early-ping").Contains(" 1 received"), TimeSpan.FromSeconds(25)),
            $"the ping sent before the Client connected: {lab.BackgroundOutput("early-ping")}");
    }

    public static TheoryData<string, string, string> Rehandshakes => new()
    {
        { Fz, Wgo, Roles.Client },
        { Fz, Wgo, Roles.Gateway },
        { Wgo, Fz, Roles.Client },
        { Wgo, Fz, Roles.Gateway },
    };

    /// <summary>
    /// A new handshake forced mid-transfer. Mechanism: remove and re-add the peer on one side (`wg set
    /// IF peer K remove`, then the same peer again). That side forgets every keypair, so its next
    /// packet (data from the client, or an ACK the gateway forwards from the resource) starts a new
    /// handshake while the other side still holds the old session and must switch to the new one.
    /// Waiting for the 120 s REKEY_AFTER_TIME would be too slow for CI.
    /// </summary>
    [Theory]
    [MemberData(nameof(Rehandshakes))]
    public void NewHandshakeForcedMidTransfer_TransferIntact(string client, string gateway, string readdOn)
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(90));
        lab.Gateway.Start(gateway);
        lab.Client.Start(client);
        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV4, 1));

        var transfer = lab.StartTransfer(Roles.Resource, Addresses.ResourceV4, "recv", Roles.Client, 15_000_000, 3_000_000);
        Thread.Sleep(1500);
        Assert.False(transfer.IsDone, "the paced transfer should still run");
        var before = lab.Counters();
        (readdOn == Roles.Client ? lab.Client : lab.Gateway).ReaddPeer();
        transfer.Wait(TimeSpan.FromSeconds(60)).AssertIntact(15_000_000);
        var after = lab.Counters();
        var initiations = after.Since(before, HandshakeInitiations("c2g")) + after.Since(before, HandshakeInitiations("g2c"));
        Assert.True(initiations >= 1, $"no handshake initiation after re-adding the peer on the {readdOn}: {after}");
    }

    /// <summary>
    /// Endpoint roaming (whitepaper 2.1): the client's underlay address changes mid-transfer and the
    /// gateway follows the authenticated packets to the new address. The roaming client is
    /// firezone-tunnel. (Debian's wireguard-go 0.0.20220316 as the client pins its source address,
    /// sticky sockets, fails every send with ENETUNREACH once that address is gone, and only recovers
    /// when its handshake-retransmit timer clears the pinned source, about 25 s later: measured here.)
    /// </summary>
    [Theory]
    [InlineData(Wgo, 4)]
    [InlineData(Fz, 4)]
    [InlineData(Wgo, 6)]
    [InlineData(Fz, 6)]
    public void ClientUnderlayAddressChanges_TrafficContinues(string gateway, int underlay)
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(90), underlay);
        lab.Gateway.Start(gateway);
        lab.Client.Start(Fz);
        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV4, 1));
        Assert.Equal(ClientEndpoint(underlay, 2), lab.Gateway.PeerEndpoint);

        var transfer = lab.StartTransfer(Roles.Resource, Addresses.ResourceV4, "recv", Roles.Client, 12_000_000, 3_000_000);
        Thread.Sleep(1500);
        Assert.False(transfer.IsDone, "the paced transfer should still run");
        lab.Roam();
        transfer.Wait(TimeSpan.FromSeconds(60)).AssertIntact(12_000_000);

        Assert.Equal(ClientEndpoint(underlay, 3), lab.Gateway.PeerEndpoint);
        Assert.True(lab.Ping(Roles.Gateway, Addresses.ClientTunnelV4, 3), "gateway -> client at its new address");
    }

    public static TheoryData<string, string> Pairs => new() { { Fz, Wgo }, { Wgo, Fz } };

    /// <summary>
    /// The two implementations over an IPv6 underlay (tunnel endpoints fd77:1::2 and fd77:2::2):
    /// the handshake, both inner families both ways, bulk data both ways, and the endpoint the
    /// Gateway learnt, as `wg show` prints it for an IPv6 address.
    /// </summary>
    [Theory]
    [MemberData(nameof(Pairs))]
    public void OverIPv6Underlay_DataBothWaysIntact(string client, string gateway)
    {
        using var lab = Lab.Up(output, TimeSpan.FromSeconds(90), underlay: 6);
        var before = lab.Counters();
        lab.Gateway.Start(gateway);
        lab.Client.Start(client);

        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV4, 3), "client -> resource, IPv4 inner");
        Assert.True(lab.Ping(Roles.Client, Addresses.ResourceV6, 3), "client -> resource, IPv6 inner");
        Assert.True(lab.Ping(Roles.Gateway, Addresses.ClientTunnelV4, 3), "gateway -> client, IPv4 inner");
        Assert.True(lab.Ping(Roles.Gateway, Addresses.ClientTunnelV6, 3), "gateway -> client, IPv6 inner");
        var after = lab.Counters();
        Assert.True(after.Since(before, HandshakeInitiations("c2g")) + after.Since(before, HandshakeInitiations("g2c")) >= 1,
            $"no handshake initiation counted on the IPv6 underlay: {after}");
        Assert.Equal(ClientEndpoint(6, 2), lab.Gateway.PeerEndpoint);

        lab.SendAndVerify(Roles.Client, Roles.Resource, Addresses.ResourceV6, 10_000_000, TimeSpan.FromSeconds(60));
        lab.StartTransfer(Roles.Resource, Addresses.ResourceV4, "send", Roles.Client, 10_000_000)
            .Wait(TimeSpan.FromSeconds(60)).AssertIntact(10_000_000);
    }

    /// <summary>The client's underlay endpoint as `wg show IF endpoints` prints it (host .2 or .3 of the lab).</summary>
    private static string ClientEndpoint(int underlay, int host) =>
        underlay == 6 ? $"[fd77:1::{host}]:51821" : $"10.77.1.{host}:51821";
}
