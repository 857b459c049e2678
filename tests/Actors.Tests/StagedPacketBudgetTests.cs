using System.Security.Cryptography;
using Firezone.Actors.Actors.Peers;
using Firezone.Actors.Actors.Tests.Fakes;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;
using Firezone.Actors.Engine.WireGuard;
using Xunit.Abstractions;

namespace Firezone.Actors.Actors.Tests;

/// <summary>
/// A Gateway whose Clients went away keeps their peers, and whatever the resources still send them
/// waits behind a handshake nobody answers (up to 128 packets a peer, as wireguard-go). Those held
/// packets live in the tunnel's one buffer pool: they must never take so much of it that the readers
/// cannot read, or every other peer stops too.
/// </summary>
public sealed class StagedPacketBudgetTests(ITestOutputHelper output) : ActorTestBase(output)
{
    [Fact]
    public void Packets_held_for_many_unreachable_peers_leave_the_pool_to_the_peers_that_answer()
    {
        var (a, b) = StartPair();

        // More unreachable peers than the pool has room for at 128 held packets each.
        int gone = a.Pool.MaxBuffers / ProtocolConstants.MaxStagedPackets + 8;
        Span<byte> key = stackalloc byte[32];
        for (int i = 0; i < gone; i++)
        {
            RandomNumberGenerator.Fill(key);
            Control<PeerConfigured>(a, new AddOrUpdatePeer(new PeerConfig
            {
                PublicKey = new WireGuardKey(key),
                Endpoint = UdpEndpoint.FromIPv4([127, 0, 1, (byte)i], 51820), // nobody there
                AllowedIps = [IpPrefix.Parse($"10.1.{i}.0/24")],
            }));
        }
        for (int i = 0; i < gone; i++)
        {
            for (int sent = 0; sent < ProtocolConstants.MaxStagedPackets; sent += 64)
            {
                var batch = new byte[64][];
                for (int j = 0; j < batch.Length; j++)
                {
                    batch[j] = Packets.Ipv4(a.Address, $"10.1.{i}.1", id: (ushort)(sent + j));
                }
                a.Tun.Inject(batch);
            }
        }
        AwaitCondition(() => a.Tun.Unread == 0 || a.Pool.Outstanding >= a.Pool.MaxBuffers, Wait);

        // A peer that answers still gets through. Its first packet may be dropped while the budget
        // is spent (it holds nothing to make room with), but it starts the handshake.
        a.Tun.Inject(Packets.Ipv4(a.Address, b.Address, payloadLength: 100, id: 7));
        AwaitCondition(() => PeerStatusOf(a, b).LastHandshakeUtc is not null, Wait, "a handshake with the peer that answers");
        var packet = Packets.Ipv4(a.Address, b.Address, payloadLength: 100, id: 8);
        a.Tun.Inject(packet);
        AwaitCondition(() => b.Tun.Written.Any(p => p.AsSpan().SequenceEqual(packet)), Wait, "the packet sent on the session");
        Assert.Equal(0, a.Tun.Unread);
        Assert.True(a.Pool.Outstanding <= a.Pool.MaxBuffers / 2, $"{a.Pool.Outstanding} of {a.Pool.MaxBuffers} buffers leased");
        Assert.Equal(a.Device.StagedBudget.Limit, a.Device.StagedBudget.Held);

        StopAndAssertNoLeaks(a, b);
    }
}
