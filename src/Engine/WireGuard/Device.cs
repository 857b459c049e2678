using Firezone.Actors.Engine.Buffers;
using Firezone.Actors.Engine.Routing;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// The local side shared by all peers (whitepaper: the interface): the static key pair, the
/// receiver-index table, the allowed-IPs table and the cookie checker. Thread-safe: the socket
/// reader routes by index, the TUN reader looks up allowed IPs, and each peer (one actor each)
/// allocates indices, all at once.
/// </summary>
public sealed class Device
{
    /// <param name="privateKey">The interface's static private key.</param>
    /// <param name="pool">Where handshake messages, keepalives and cookie replies are rented from.</param>
    /// <param name="random">Ephemeral keys, indices, cookie secrets, jitter.</param>
    /// <param name="wallClockAtZero">Wall-clock time (UTC) at monotonic time zero; TAI64N timestamps are this plus <c>now</c>.</param>
    public Device(WireGuardKey privateKey, PacketBufferPool pool, IRandomSource random, DateTime wallClockAtZero)
    {
        throw new NotImplementedException("issue 3");
    }

    public WireGuardKey PublicKey => throw new NotImplementedException("issue 3");

    public PacketBufferPool Pool => throw new NotImplementedException("issue 3");

    /// <summary>Local receiver index -> the public key of the peer that owns it (handshake or keypair).</summary>
    public IndexTable Indices => throw new NotImplementedException("issue 3");

    /// <summary>Cryptokey routing: address -> peer public key, for outbound routing and the inbound source check.</summary>
    public AllowedIps<WireGuardKey> AllowedIps => throw new NotImplementedException("issue 3");

    /// <summary>
    /// Checks mac1 (and mac2 when <paramref name="underLoad"/>) of an initiation or response
    /// (whitepaper section 5.3). On <see cref="HandshakeAdmission.SendCookie"/>,
    /// <paramref name="cookieReply"/> is a rented datagram addressed to the sender, owned by the caller.
    /// </summary>
    public HandshakeAdmission AdmitHandshake(PacketBuffer datagram, bool underLoad, TimeSpan now, out PacketBuffer? cookieReply)
    {
        throw new NotImplementedException("issue 3");
    }

    /// <summary>
    /// Decrypts just enough of an initiation to learn the initiator's static public key, so the
    /// message can be routed to that peer's owner. False when it does not decrypt.
    /// </summary>
    public bool TryIdentifyInitiator(ReadOnlySpan<byte> initiation, out WireGuardKey initiatorPublicKey)
    {
        throw new NotImplementedException("issue 3");
    }
}
