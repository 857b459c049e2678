using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// The sessions a stopping tunnel's peers hand over to the tunnel rebuilt after it (the host's
/// rebuild for bigger buffers): kept only once the host asked for them, taken once, and zeroed
/// with the collection when nobody took them.
/// </summary>
public sealed class PeerHandoversTests
{
    private static readonly PacketBufferPool Pool = new(preallocate: 0);

    private static PeerHandover HandoverOf(Device device, WireGuardKey remote)
    {
        using var peer = new Peer(device, new PeerConfig { PublicKey = remote });
        return peer.HandOver()!;
    }

    private static (Device Device, WireGuardKey Remote) NewDevice()
    {
        Span<byte> key = stackalloc byte[32];
        CryptoRandomSource.Instance.Fill(key);
        var device = new Device(new WireGuardKey(key), Pool, CryptoRandomSource.Instance, DateTime.UnixEpoch);
        CryptoRandomSource.Instance.Fill(key);
        return (device, new WireGuardKey(key));
    }

    [Fact]
    public void Sessions_are_kept_only_once_the_host_asked_and_are_taken_once()
    {
        var (device, remote) = NewDevice();
        using var handovers = new PeerHandovers();

        handovers.Put(HandoverOf(device, remote)); // a peer removed or the daemon stopping: dropped
        Assert.False(handovers.IsCollecting);
        Assert.Equal(0, handovers.Count);
        Assert.False(handovers.TryTake(remote, out _));

        handovers.Collect();
        var handover = HandoverOf(device, remote);
        handovers.Put(handover);
        Assert.Equal(1, handovers.Count);
        Assert.True(handovers.TryTake(remote, out var taken));
        Assert.Same(handover, taken);
        Assert.False(handovers.TryTake(remote, out _)); // once: a restarted peer starts afresh
        taken.Dispose();
        device.Dispose();
    }

    [Fact]
    public void A_disposed_collection_keeps_nothing_and_gives_nothing()
    {
        // Disposed by the host at the next rebuild or at shutdown; a peer of the old tunnel that
        // closes only then (a tunnel that did not stop in time) must not leave its session there.
        var (device, remote) = NewDevice();
        var handovers = new PeerHandovers();
        handovers.Collect();
        handovers.Put(HandoverOf(device, remote));

        handovers.Dispose();
        handovers.Collect(); // too late: closed
        handovers.Put(HandoverOf(device, remote));

        Assert.False(handovers.IsCollecting);
        Assert.Equal(0, handovers.Count);
        Assert.False(handovers.TryTake(remote, out _));
        device.Dispose();
    }
    [Fact]
    public void Sessions_of_peers_the_rebuilt_tunnel_does_not_have_go_and_free_the_indices_reserved_for_them()
    {
        // The host reserves the handed-over indices in the rebuilt device's table before it reads;
        // a peer removed meanwhile never takes its sessions, and before, its indices stayed claimed
        // in that table for the tunnel's lifetime.
        var (device, remote) = NewDevice();
        var (other, kept) = NewDevice();
        using var handovers = new PeerHandovers();
        handovers.Collect();
        handovers.Put(HandshakingHandoverOf(device, remote));
        handovers.Put(HandshakingHandoverOf(device, kept));
        var table = new Firezone.Actors.Engine.Routing.IndexTable();
        handovers.ReserveIndices(table);
        Assert.Equal(2, table.Count);

        Assert.Equal(1, handovers.DisposeUnconfigured(key => key == kept));

        Assert.Equal(1, table.Count);
        Assert.False(handovers.TryTake(remote, out _));
        Assert.True(handovers.TryTake(kept, out var taken)); // a configured peer's sessions wait for it
        taken.Dispose();
        Assert.Equal(0, table.Count);
        device.Dispose();
        other.Dispose();
    }

    private static PeerHandover HandshakingHandoverOf(Device device, WireGuardKey remote)
    {
        using var peer = new Peer(device, new PeerConfig { PublicKey = remote, Endpoint = UdpEndpoint.FromIPv4([127, 0, 0, 1], 9) });
        peer.Connect(TimeSpan.Zero); // a handshake in flight: its index is handed over
        while (peer.PollTransmit(out var initiation))
        {
            initiation.Return();
        }
        return peer.HandOver()!;
    }
}
