using System.Text;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>
/// Every single-bit change of a genuine initiation, cookie reply and response (deterministic, all
/// bits), delivered before the genuine message: refused, with mac1 left as it is and with mac1
/// recomputed (anyone can, the key is the receiver's public key) so that the change reaches the Noise
/// layer. Then the genuine messages still complete the handshake and the session carries data both
/// ways. Left out, because the protocol does not authenticate them and wireguard-go and the kernel
/// accept them changed too: the sender index (4-7 of initiation and response) and mac2 (the last 16
/// bytes) while the receiver is not under load.
/// </summary>
public class HandshakeBitFlipTests
{
    private static readonly UdpEndpoint Source = UdpEndpoint.FromIPv4([192, 0, 2, 1], 51820);

    [Fact]
    public void Every_bit_flip_of_the_three_handshake_messages_is_refused_and_the_genuine_ones_still_complete()
    {
        var wire = new WireHarness(seed: 4242);
        wire.OnWire = (_, _) => false; // captured in wire.Wire, delivered by the test
        wire.A.Peer.Connect(wire.Now);
        wire.Pump();
        byte[] initiation = wire.Sent(wire.A, MessageType.Initiation).Single().Bytes;

        // Under load, B answers the initiation with a cookie reply (its mac2 is empty).
        wire.B.UnderLoad = true;
        Assert.Equal(HandshakeAdmission.SendCookie, wire.Inject(wire.B, initiation, wire.A.Endpoint).Admission);
        wire.Pump();
        wire.B.UnderLoad = false;
        byte[] cookieReply = wire.Sent(wire.B, MessageType.CookieReply).Single().Bytes;

        FlipEveryBit(wire, wire.B, initiation, mac1Key: PublicKeyOf(wire.B), skip: i => i is >= 4 and < 8 || i >= 132, "initiation");
        FlipEveryBit(wire, wire.A, cookieReply, mac1Key: null, skip: _ => false, "cookie reply");
        Assert.Equal(HandshakeResult.Accepted, wire.Inject(wire.A, cookieReply, wire.B.Endpoint).Handshake);

        Assert.Equal(HandshakeResult.Accepted, wire.Inject(wire.B, initiation, wire.A.Endpoint).Handshake);
        wire.Pump();
        byte[] response = wire.Sent(wire.B, MessageType.Response).Single().Bytes;
        FlipEveryBit(wire, wire.A, response, mac1Key: PublicKeyOf(wire.A), skip: i => i is >= 4 and < 8 || i >= 76, "response");
        Assert.Equal(HandshakeResult.Accepted, wire.Inject(wire.A, response, wire.B.Endpoint).Handshake);

        // The session works both ways.
        wire.OnWire = null;
        wire.Pump(); // A's confirmation (a keepalive) goes to B
        for (int round = 0; round < 2; round++)
        {
            foreach (var from in new[] { wire.A, wire.B })
            {
                var to = wire.Other(from);
                int before = to.Received.Count;
                byte[] packet = wire.PacketFrom(from, 60 + round, tag: round);
                Assert.NotEqual(SealResult.Dropped, wire.SendPacket(from, packet));
                Assert.True(to.Received.Count == before + 1 && to.Received[^1].Packet.AsSpan().SequenceEqual(packet), $"{from.Name} to {to.Name}, round {round}");
            }
        }
        wire.DisposeAndAssertNoLeaks();
    }

    private static void FlipEveryBit(WireHarness wire, Node to, byte[] genuine, byte[]? mac1Key, Func<int, bool> skip, string what)
    {
        long handshakesBefore = to.Peer.Counters.HandshakesCompleted;
        for (int bit = 0; bit < genuine.Length * 8; bit++)
        {
            int at = bit / 8;
            if (skip(at))
            {
                continue;
            }
            for (int recompute = 0; recompute < (mac1Key is null ? 1 : 2); recompute++)
            {
                byte[] bytes = (byte[])genuine.Clone();
                bytes[at] ^= (byte)(1 << (bit % 8));
                if (recompute == 1)
                {
                    int mac1 = bytes.Length - 32;
                    if (at >= mac1)
                    {
                        continue; // recomputing would undo the change
                    }
                    byte[] key = ReferenceWireGuard.Hash(Encoding.ASCII.GetBytes("mac1----"), mac1Key!);
                    ReferenceWireGuard.Mac(key, bytes[..mac1]).CopyTo(bytes, mac1);
                }
                var delivery = wire.Inject(to, bytes, Source);
                Assert.True(delivery.Handshake is not HandshakeResult.Accepted && delivery.Open is null or not (OpenResult.Packet or OpenResult.Keepalive),
                    $"{what}: bit {bit} flipped (mac1 {(recompute == 1 ? "recomputed" : "as it was")}) was taken: {delivery}: {Convert.ToHexString(bytes)}");
                if (recompute == 1 && at >= 4)
                {
                    // Past the device's mac1 check: the change reached the Noise layer.
                    Assert.True(delivery.Admission == HandshakeAdmission.Accept, $"{what}: bit {bit}: {delivery}");
                }
                wire.Pump();
            }
        }
        Assert.Equal(handshakesBefore, to.Peer.Counters.HandshakesCompleted);
    }

    private static byte[] PublicKeyOf(Node node)
    {
        var bytes = new byte[WireGuardKey.Size];
        node.Device.PublicKey.CopyTo(bytes);
        return bytes;
    }
}
