using System.Buffers.Binary;
using System.Security.Cryptography;
using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Crypto;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// The receiving half of whitepaper section 5.4.4 and 5.4.7 (wireguard-go's CookieChecker): checks
/// mac1 with HASH("mac1----" || Spub_m), checks mac2 against the cookie of the sender's address when
/// under load, and writes cookie replies. The cookie secret Rm is random and replaced every two
/// minutes. Thread-safe: the secret is guarded by a lock, everything else is immutable.
/// </summary>
internal sealed class CookieChecker
{
    private readonly byte[] _mac1Key = new byte[32];
    private readonly byte[] _cookieKey = new byte[32];
    private readonly byte[] _secret = new byte[32];
    private readonly IRandomSource _random;
    private readonly object _gate = new();
    private TimeSpan? _secretSetAt;

    public CookieChecker(ReadOnlySpan<byte> localStaticPublic, IRandomSource random)
    {
        Noise.LabelKey(Noise.LabelMac1, localStaticPublic, _mac1Key);
        Noise.LabelKey(Noise.LabelCookie, localStaticPublic, _cookieKey);
        _random = random;
    }

    /// <summary>msg.mac1 = MAC(HASH("mac1----" || Spub_m), msg up to mac1).</summary>
    public bool CheckMac1(ReadOnlySpan<byte> message)
    {
        int mac1Offset = message.Length - 2 * MessageLayout.MacSize;
        Span<byte> expected = stackalloc byte[MessageLayout.MacSize];
        Blake2s.Mac(_mac1Key, message[..mac1Offset], expected);
        return CryptographicOperations.FixedTimeEquals(expected, message.Slice(mac1Offset, MessageLayout.MacSize));
    }

    /// <summary>msg.mac2 = MAC(cookie, msg up to mac2) where cookie = MAC(Rm, source address); false once Rm is stale.</summary>
    public bool CheckMac2(ReadOnlySpan<byte> message, UdpEndpoint source, TimeSpan now)
    {
        Span<byte> cookie = stackalloc byte[MessageLayout.MacSize];
        lock (_gate)
        {
            if (_secretSetAt is not { } setAt || now - setAt > ProtocolConstants.CookieRefreshTime)
            {
                return false;
            }
            ComputeCookie(source, cookie);
        }
        int mac2Offset = message.Length - MessageLayout.MacSize;
        Span<byte> expected = stackalloc byte[MessageLayout.MacSize];
        Blake2s.Mac(cookie, message[..mac2Offset], expected);
        CryptographicOperations.ZeroMemory(cookie);
        return CryptographicOperations.FixedTimeEquals(expected, message[mac2Offset..]);
    }

    /// <summary>
    /// Section 5.4.7: msg.receiver = the sender index of <paramref name="message"/>, a random 24-byte
    /// nonce, and cookie = XAEAD(HASH("cookie--" || Spub_m), nonce, MAC(Rm, source), msg.mac1).
    /// </summary>
    public void CreateReply(ReadOnlySpan<byte> message, UdpEndpoint source, TimeSpan now, Span<byte> reply)
    {
        Span<byte> cookie = stackalloc byte[MessageLayout.MacSize];
        lock (_gate)
        {
            if (_secretSetAt is not { } setAt || now - setAt > ProtocolConstants.CookieRefreshTime)
            {
                _random.Fill(_secret);
                _secretSetAt = now;
            }
            ComputeCookie(source, cookie);
        }
        reply[..MessageHeader.CookieReplySize].Clear();
        reply[0] = (byte)MessageType.CookieReply;
        // Initiations and responses both carry the sender index at offset 4.
        uint sender = BinaryPrimitives.ReadUInt32LittleEndian(message[MessageLayout.InitiationSender..]);
        BinaryPrimitives.WriteUInt32LittleEndian(reply[MessageLayout.CookieReceiver..], sender);
        Span<byte> nonce = reply.Slice(MessageLayout.CookieNonce, XChaCha20Poly1305Aead.NonceSize);
        _random.Fill(nonce);
        int mac1Offset = message.Length - 2 * MessageLayout.MacSize;
        XChaCha20Poly1305Aead.Seal(_cookieKey, nonce, cookie, message.Slice(mac1Offset, MessageLayout.MacSize),
            reply.Slice(MessageLayout.CookieEncrypted, MessageLayout.MacSize + XChaCha20Poly1305Aead.TagSize));
        CryptographicOperations.ZeroMemory(cookie);
    }

    /// <summary>MAC(Rm, A): A is the 16-byte (IPv4-mapped) address and the 2-byte big-endian port.</summary>
    private void ComputeCookie(UdpEndpoint source, Span<byte> cookie)
    {
        Span<byte> address = stackalloc byte[18];
        source.WriteIPv6(address);
        BinaryPrimitives.WriteUInt16BigEndian(address[16..], source.Port);
        Blake2s.Mac(_secret, address, cookie);
    }
}
