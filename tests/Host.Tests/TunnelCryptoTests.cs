using System.Security.Cryptography;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Host;
using Firezone.Actors.Host.Tunnel;
using Firezone.Actors.Native;

namespace Firezone.Actors.Host.Tests;

/// <summary>The cryptography a daemon's tunnels get, and the one line when the machine's OpenSSL lacks the cipher.</summary>
public class TunnelCryptoTests
{
    /// <summary>What .NET's class does under an OpenSSL configured with FIPS-only providers: every key fails.</summary>
    private sealed class RefusingAead : ITransportAead
    {
        public string Name => "refusing";

        public TransportAeadKey CreateKey(ReadOnlySpan<byte> key32) =>
            throw new CryptographicException("error:0308010C:digital envelope routines::unsupported");
    }

    [Fact]
    public void On_this_machine_both_come_from_OpenSSL()
    {
        var crypto = TunnelCrypto.Choose();
        Assert.Same(OpenSslX25519.Instance, crypto.X25519);
        Assert.Same(OpenSslChaCha20Poly1305.Instance, crypto.TransportAead);
    }

    [Fact]
    public void An_openssl_without_the_cipher_is_one_startup_line_naming_it_and_the_reason()
    {
        var e = Assert.Throws<StartupException>(() => TunnelCrypto.Checked(BouncyCastleX25519.Instance, new RefusingAead()));
        Assert.StartsWith("ChaCha20-Poly1305, which every WireGuard message needs, is not available from this machine's OpenSSL (error:0308010C", e.Message);
        Assert.Contains("OPENSSL_CONF", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void The_fallback_passes_the_check()
    {
        var crypto = TunnelCrypto.Checked(BouncyCastleX25519.Instance, DotNetTransportAead.Instance);
        Assert.Same(DotNetTransportAead.Instance, crypto.TransportAead);
    }

    /// <summary>The rehearsal the daemon runs at start (ActorTunnelControl) goes through with the crypto it chose.</summary>
    [Fact]
    public void The_daemons_handshake_rehearsal_completes_with_the_crypto_chosen()
    {
        var crypto = TunnelCrypto.Choose();
        Assert.True(Firezone.Actors.Engine.WireGuard.HandshakeRehearsal.Run(crypto.X25519, crypto.TransportAead,
            Firezone.Actors.Engine.WireGuard.CryptoRandomSource.Instance));
    }
}
