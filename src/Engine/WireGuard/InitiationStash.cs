using System.Security.Cryptography;
using Firezone.Actors.Engine.Buffers;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// Carries the responder's first half of an initiation (whitepaper section 5.4.2: Ci and Hi after
/// msg.static, and the initiator's static key) from <see cref="Device.TryIdentifyInitiator(PacketBuffer, out WireGuardKey)"/>,
/// which must decrypt msg.static to learn which peer the message is for, to that peer's
/// <see cref="Peer.HandleHandshakeMessage"/>, which would otherwise decrypt it again: one X25519
/// (DH(S_priv_r, E_pub_i)) less per initiation. wireguard-go and boringtun do the whole consumption
/// in one call; here the two halves run in different actors, so the state travels in the spare end
/// of the initiation's own buffer, whose ownership moves with the message.
///
/// The state is secret (with the timestamp it authenticates the initiation), so it is zeroed when
/// taken, when the buffer is reset and when it goes back to its pool. It is only taken by a peer of
/// the same <see cref="Device"/> (a new private key builds a new device) for an unchanged message.
/// </summary>
internal static class InitiationStash
{
    private const int KeyLength = 32;

    /// <summary>Chain key, hash and initiator's static key, at the end of the buffer's array.</summary>
    private const int Size = 3 * KeyLength;

    /// <summary>Leaves the state in <paramref name="buffer"/> when its array has room after the message.</summary>
    public static void Put(PacketBuffer buffer, Device owner, ReadOnlySpan<byte> chainKey, ReadOnlySpan<byte> hash, ReadOnlySpan<byte> remoteStatic)
    {
        int at = buffer.Array.Length - Size;
        if (buffer.Offset + buffer.Length > at || buffer.Length != MessageHeader.InitiationSize)
        {
            return; // no room (never for a 148-byte initiation in a packet buffer): the peer decrypts again
        }
        Span<byte> stash = buffer.Array.AsSpan(at, Size);
        chainKey.CopyTo(stash);
        hash.CopyTo(stash[KeyLength..]);
        remoteStatic.CopyTo(stash[(2 * KeyLength)..]);
        buffer.StashOwner = owner;
    }

    /// <summary>
    /// Moves the state that <paramref name="owner"/> left in <paramref name="buffer"/> into the
    /// spans and zeroes it; false (nothing written) when there is none from that device.
    /// </summary>
    public static bool TryTake(PacketBuffer buffer, Device owner, Span<byte> chainKey, Span<byte> hash, Span<byte> remoteStatic)
    {
        if (!ReferenceEquals(buffer.StashOwner, owner) || buffer.Length != MessageHeader.InitiationSize)
        {
            Clear(buffer);
            return false;
        }
        ReadOnlySpan<byte> stash = buffer.Array.AsSpan(buffer.Array.Length - Size, Size);
        stash[..KeyLength].CopyTo(chainKey);
        stash.Slice(KeyLength, KeyLength).CopyTo(hash);
        stash.Slice(2 * KeyLength, KeyLength).CopyTo(remoteStatic);
        Clear(buffer);
        return true;
    }

    /// <summary>Zeroes and forgets any state in <paramref name="buffer"/>.</summary>
    public static void Clear(PacketBuffer buffer)
    {
        if (buffer.StashOwner is null)
        {
            return;
        }
        buffer.StashOwner = null;
        if (buffer.Array.Length >= Size)
        {
            CryptographicOperations.ZeroMemory(buffer.Array.AsSpan(buffer.Array.Length - Size, Size));
        }
    }
}
