using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Engine.WireGuard;

namespace Firezone.Actors.Engine.Tests.WireGuard;

/// <summary>The daemon rehearses a handshake in memory at start with its own crypto (see <see cref="HandshakeRehearsal"/>).</summary>
public class HandshakeRehearsalTests
{
    [Fact]
    public void A_handshake_and_a_packet_each_way_go_through_with_the_crypto_given_and_its_keys_are_disposed()
    {
        var aead = new CountingAead();
        Assert.True(HandshakeRehearsal.Run(BouncyCastleX25519.Instance, aead, CryptoRandomSource.Instance));
        // One session: a sending and a receiving key on each side; the initiator's keepalive, then one
        // packet each way, each sealed and opened.
        Assert.Equal(4, aead.KeysCreated);
        Assert.Equal((3, 3), (aead.Seals, aead.Opens));
        Assert.Equal(4, aead.KeysDisposed);
    }

    [Fact]
    public void A_rehearsal_whose_packets_do_not_open_reports_false_instead_of_throwing()
    {
        var aead = new CountingAead { RefuseOpens = true };
        Assert.False(HandshakeRehearsal.Run(BouncyCastleX25519.Instance, aead, CryptoRandomSource.Instance));
        Assert.Equal(1, aead.Opens);
        Assert.Equal(aead.KeysCreated, aead.KeysDisposed);
    }
}
