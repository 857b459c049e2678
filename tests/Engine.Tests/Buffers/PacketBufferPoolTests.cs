using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Engine.Tests.Buffers;

public class PacketBufferPoolTests
{
    [Fact]
    public void Rent_and_return_track_outstanding_leases()
    {
        var pool = new PacketBufferPool(preallocate: 4);
        var a = pool.Rent();
        var b = pool.Rent();
        Assert.Equal(2, pool.Outstanding);
        a.Return();
        pool.Return(b);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void Fresh_buffer_leaves_headroom_and_tailroom_for_in_place_sealing()
    {
        var pool = new PacketBufferPool();
        var buffer = pool.Rent();
        Assert.Equal(PacketBuffer.Headroom, buffer.Offset);
        Assert.Equal(0, buffer.Length);
        Assert.True(PacketBuffer.Headroom >= 16, "transport header must fit in front");
        Assert.True(PacketBuffer.Tailroom >= 15 + 16, "padding and tag must fit after");
        Assert.True(buffer.MaxPacketLength >= 1500, "a 1500-byte MTU packet must fit");
        buffer.Return();
    }

    [Fact]
    public void Double_return_is_detected()
    {
        var pool = new PacketBufferPool();
        var buffer = pool.Rent();
        buffer.Return();
        var error = Assert.Throws<InvalidOperationException>(() => buffer.Return());
        Assert.Contains("twice", error.Message);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void Returned_buffers_are_reused_and_reset()
    {
        var pool = new PacketBufferPool(preallocate: 1);
        var first = pool.Rent();
        first.SetData(10, 20);
        first.Ecn = Engine.Ecn.Ce;
        first.Return();
        var second = pool.Rent();
        Assert.Same(first, second);
        Assert.Equal(PacketBuffer.Headroom, second.Offset);
        Assert.Equal(0, second.Length);
        Assert.Equal(Engine.Ecn.NotEct, second.Ecn);
        second.Return();
    }

    [Fact]
    public void Rent_and_return_do_not_allocate_when_warm()
    {
        var pool = new PacketBufferPool(preallocate: 64);
        for (int i = 0; i < 100; i++)
        {
            pool.Rent().Return();
        }
        long allocated = SteadyStateAllocations.LeastOf(3, () =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                var buffer = pool.Rent();
                buffer.Return();
            }
        });
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Exhaustion_is_reported()
    {
        var pool = new PacketBufferPool(preallocate: 2, maxBuffers: 2);
        var a = pool.Rent();
        var b = pool.Rent();
        Assert.False(pool.TryRent(out _));
        Assert.Throws<InvalidOperationException>(() => pool.Rent());
        a.Return();
        b.Return();
    }

    [Fact]
    public void Concurrent_rent_and_return_balance()
    {
        var pool = new PacketBufferPool(preallocate: 16);
        Parallel.For(0, 4, _ =>
        {
            for (int i = 0; i < 20_000; i++)
            {
                var buffer = pool.Rent();
                buffer.Data.Clear();
                buffer.Return();
            }
        });
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void Endpoint_round_trips_ipv4_and_ipv6()
    {
        var v4 = UdpEndpoint.FromIPEndPoint(System.Net.IPEndPoint.Parse("192.0.2.7:51820"));
        Assert.True(v4.IsIPv4);
        Assert.Equal("192.0.2.7:51820", v4.ToString());
        var v6 = UdpEndpoint.FromIPEndPoint(System.Net.IPEndPoint.Parse("[2001:db8::1]:443"));
        Assert.False(v6.IsIPv4);
        Assert.Equal("[2001:db8::1]:443", v6.ToString());
        Assert.NotEqual(v4, v6);
        Assert.True(UdpEndpoint.None.IsNone);
    }

    [Fact]
    public void A_link_local_endpoint_keeps_its_scope_and_differs_by_it()
    {
        var onTwo = UdpEndpoint.FromIPEndPoint(System.Net.IPEndPoint.Parse("[fe80::1%2]:51820"));
        Assert.Equal(2u, onTwo.ScopeId);
        Assert.Equal("[fe80::1%2]:51820", onTwo.ToString());
        Assert.Equal(2, onTwo.ToIPEndPoint().Address.ScopeId);
        Span<byte> address = stackalloc byte[16];
        onTwo.WriteIPv6(address);
        Assert.Equal(onTwo, UdpEndpoint.FromIPv6(address, 51820, 2));
        // The same address on another link is another endpoint (roaming, GSO grouping).
        var onThree = UdpEndpoint.FromIPv6(address, 51820, 3);
        Assert.NotEqual(onTwo, onThree);
        Assert.NotEqual(onTwo.GetHashCode(), onThree.GetHashCode());
        Assert.Equal(0u, UdpEndpoint.FromIPEndPoint(System.Net.IPEndPoint.Parse("[2001:db8::1]:443")).ScopeId);
    }
}
