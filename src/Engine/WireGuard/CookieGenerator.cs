using System.Security.Cryptography;
using Firezone.Actors.Engine.Crypto;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// The sending half of whitepaper section 5.4.4 and 5.4.7 (wireguard-go's CookieGenerator), one per
/// peer: adds mac1 (keyed with the peer's public key) to every handshake message we send, and mac2
/// while a cookie from that peer is less than two minutes old. Remembers the last mac1 sent, since a
/// cookie reply is authenticated against it.
/// </summary>
internal sealed class CookieGenerator
{
    // Inline, not byte[] (see Bytes32): the key fields live in this object.
    private readonly Bytes32 _mac1Key;
    private readonly Bytes32 _cookieKey;
    private Mac16 _cookie;
    private Mac16 _lastMac1;
    private bool _hasLastMac1;
    private TimeSpan? _cookieSetAt;

    public CookieGenerator(ReadOnlySpan<byte> remoteStaticPublic)
    {
        Noise.LabelKey(Noise.LabelMac1, remoteStaticPublic, _mac1Key);
        Noise.LabelKey(Noise.LabelCookie, remoteStaticPublic, _cookieKey);
    }

    public bool HasFreshCookie(TimeSpan now) => _cookieSetAt is { } setAt && now - setAt <= ProtocolConstants.CookieRefreshTime;

    /// <summary>Writes mac1 and (with a fresh cookie) mac2 into the last 32 bytes of <paramref name="message"/>.</summary>
    public void AddMacs(Span<byte> message, TimeSpan now)
    {
        int mac1Offset = message.Length - 2 * MessageLayout.MacSize;
        int mac2Offset = message.Length - MessageLayout.MacSize;
        Span<byte> mac1 = message.Slice(mac1Offset, MessageLayout.MacSize);
        Blake2s.Mac((ReadOnlySpan<byte>)_mac1Key, message[..mac1Offset], mac1);
        mac1.CopyTo(_lastMac1);
        _hasLastMac1 = true;
        Span<byte> mac2 = message[mac2Offset..];
        if (HasFreshCookie(now))
        {
            Blake2s.Mac((ReadOnlySpan<byte>)_cookie, message[..mac2Offset], mac2);
        }
        else
        {
            mac2.Clear();
        }
    }

    /// <summary>Decrypts a cookie reply's cookie with the last mac1 as associated data; false when it does not verify.</summary>
    public bool TryConsumeReply(ReadOnlySpan<byte> reply, TimeSpan now)
    {
        if (!_hasLastMac1 || reply.Length != MessageHeader.CookieReplySize)
        {
            return false;
        }
        Span<byte> cookie = stackalloc byte[MessageLayout.MacSize];
        if (!XChaCha20Poly1305Aead.TryOpen(
                (ReadOnlySpan<byte>)_cookieKey,
                reply.Slice(MessageLayout.CookieNonce, XChaCha20Poly1305Aead.NonceSize),
                reply.Slice(MessageLayout.CookieEncrypted, MessageLayout.MacSize + XChaCha20Poly1305Aead.TagSize),
                (ReadOnlySpan<byte>)_lastMac1,
                cookie))
        {
            return false;
        }
        cookie.CopyTo(_cookie);
        CryptographicOperations.ZeroMemory(cookie);
        _cookieSetAt = now;
        return true;
    }

    public void Clear()
    {
        CryptographicOperations.ZeroMemory(_cookie);
        _cookieSetAt = null;
        _hasLastMac1 = false;
    }

    [System.Runtime.CompilerServices.InlineArray(MessageLayout.MacSize)]
    private struct Mac16
    {
        private byte _element0;
    }
}
