using System.Security.Cryptography;
using Firezone.Actors.Engine.Crypto;
using Firezone.Actors.Native;

namespace Firezone.Actors.Host.Tunnel;

/// <summary>
/// The cryptography every engine device of the daemon gets, chosen once at start: OpenSSL's X25519
/// where libcrypto has it (a handshake in 0.61 of BouncyCastle's time, <see cref="OpenSslX25519"/>),
/// and OpenSSL's ChaCha20-Poly1305 called straight for every transport message (0.7 of .NET's time
/// per seal, <see cref="OpenSslChaCha20Poly1305"/>), else the fallbacks.
/// </summary>
internal sealed record TunnelCrypto(IX25519 X25519, ITransportAead TransportAead)
{
    /// <summary>
    /// Chooses, and makes sure a transport key can be made: an OpenSSL configured without
    /// ChaCha20-Poly1305 (FIPS-only providers) offers it to neither implementation, and every
    /// handshake would then fail its peer. That is one clear line at start instead.
    /// </summary>
    public static TunnelCrypto Choose() =>
        Checked((IX25519?)OpenSslX25519.Instance ?? BouncyCastleX25519.Instance,
            (ITransportAead?)OpenSslChaCha20Poly1305.Instance ?? DotNetTransportAead.Instance);

    /// <summary>These two, once a transport key of <paramref name="aead"/> has sealed a keepalive.</summary>
    internal static TunnelCrypto Checked(IX25519 x25519, ITransportAead aead)
    {
        try
        {
            using var key = aead.CreateKey(new byte[NoiseAead.KeySize]);
            Span<byte> tag = stackalloc byte[NoiseAead.TagSize];
            key.Seal(0, [], tag);
        }
        catch (Exception e) when (e is CryptographicException or PlatformNotSupportedException)
        {
            throw new StartupException(
                $"ChaCha20-Poly1305, which every WireGuard message needs, is not available from this machine's OpenSSL ({e.Message}): " +
                "a FIPS-only or otherwise restricted OpenSSL configuration (OPENSSL_CONF, /etc/ssl/openssl.cnf) cannot run WireGuard", e);
        }
        return new TunnelCrypto(x25519, aead);
    }
}
