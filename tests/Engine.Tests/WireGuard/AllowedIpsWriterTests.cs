using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// The allowed-IPs table has one writer. By default a Peer leaves it alone (the supervisor writes it);
/// a standalone engine opts in with <see cref="Device.PeersWriteAllowedIps"/>.
/// </summary>
public class AllowedIpsWriterTests
{
    private static Device NewDevice(int seed) =>
        new(WireHarness.RandomKey(new SeededRandomSource(seed)), new PacketBufferPool(preallocate: 2), new SeededRandomSource(seed + 1),
            new DateTime(2026, 11, 25, 12, 0, 0, DateTimeKind.Utc));

    [Fact]
    public void By_default_a_peer_never_writes_the_table()
    {
        var device = NewDevice(701);
        var remote = WireHarness.RandomKey(new SeededRandomSource(703));
        var other = WireHarness.RandomKey(new SeededRandomSource(704));
        // The writer moved 10.1.0.0/16 to another peer; this peer's config still lists it.
        device.AllowedIps.Insert(IpPrefix.Parse("10.1.0.0/16"), other);
        device.AllowedIps.Insert(IpPrefix.Parse("10.2.0.0/16"), remote);
        var config = new PeerConfig { PublicKey = remote, AllowedIps = [IpPrefix.Parse("10.1.0.0/16"), IpPrefix.Parse("10.2.0.0/16")] };

        var peer = new Peer(device, config);
        Assert.True(device.AllowedIps.TryLookup([10, 1, 0, 1], out var owner));
        Assert.Equal(other, owner);
        peer.Update(config with { AllowedIps = [IpPrefix.Parse("10.3.0.0/16")] }, TimeSpan.Zero);
        Assert.False(device.AllowedIps.TryLookup([10, 3, 0, 1], out _));
        Assert.True(device.AllowedIps.TryLookup([10, 2, 0, 1], out owner));
        Assert.Equal(remote, owner);
        peer.Dispose();
        Assert.Equal(2, device.AllowedIps.Count);
    }

    [Fact]
    public void A_standalone_engine_can_opt_in()
    {
        var device = NewDevice(711);
        device.PeersWriteAllowedIps = true;
        var remote = WireHarness.RandomKey(new SeededRandomSource(713));
        var peer = new Peer(device, new PeerConfig { PublicKey = remote, AllowedIps = [IpPrefix.Parse("10.1.0.0/16")] });
        Assert.True(device.AllowedIps.TryLookup([10, 1, 0, 1], out var owner));
        Assert.Equal(remote, owner);
        peer.Update(peer.Config with { AllowedIps = [IpPrefix.Parse("10.3.0.0/16")] }, TimeSpan.Zero);
        Assert.False(device.AllowedIps.TryLookup([10, 1, 0, 1], out _));
        Assert.True(device.AllowedIps.TryLookup([10, 3, 0, 1], out _));
        peer.Dispose();
        Assert.Equal(0, device.AllowedIps.Count);
    }
}
