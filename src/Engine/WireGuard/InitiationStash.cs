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
/// of the initiation's own buffer (<see cref="PacketBuffer.SecretTailSize"/>), whose ownership moves
/// with the message.
///
/// The state is secret (with the timestamp it authenticates the initiation), so it is zeroed when
/// taken, when the buffer is reset and when it goes back to its pool. It is only taken by a peer of
/// the same <see cref="Device"/> (a new private key builds a new device), and only for the message
/// it was computed from: msg.ephemeral and msg.static, the only bytes Ci and Hi depend on besides the
/// responder's keys, are kept beside it and compared.
/// </summary>
internal static class InitiationStash
{
    private const int KeyLength = 32;

    /// <summary>msg.ephemeral and msg.static (with its tag), contiguous in the message.</summary>
    private const int InputLength = 32 + 32 + 16;

    /// <summary>Chain key, hash, initiator's static key, then the message bytes they came from.</summary>
    private const int Size = 3 * KeyLength + InputLength;

    static InitiationStash()
    {
        if (Size > PacketBuffer.SecretTailSize || MessageLayout.InitiationStatic != MessageLayout.InitiationEphemeral + 32)
        {
            throw new InvalidOperationException("InitiationStash: the stash does not fit the packet buffer's secret tail");
        }
    }

    /// <summary>Leaves the state in <paramref name="buffer"/> when its array has room after the message.</summary>
    public static void Put(PacketBuffer buffer, Device owner, ReadOnlySpan<byte> chainKey, ReadOnlySpan<byte> hash, ReadOnlySpan<byte> remoteStatic)
    {
        int at = buffer.Array.Length - PacketBuffer.SecretTailSize;
        if (buffer.Offset + buffer.Length > at || buffer.Length != MessageHeader.InitiationSize)
        {
            return; // no room (never for a 148-byte initiation in a packet buffer): the peer decrypts again
        }
        Span<byte> stash = buffer.Array.AsSpan(at, Size);
        chainKey.CopyTo(stash);
        hash.CopyTo(stash[KeyLength..]);
        remoteStatic.CopyTo(stash[(2 * KeyLength)..]);
        Inputs(buffer).CopyTo(stash[(3 * KeyLength)..]);
        buffer.StashOwner = owner;
    }

    /// <summary>
    /// Moves the state that <paramref name="owner"/> left in <paramref name="buffer"/> for the message
    /// it holds now into the spans and zeroes it; false (nothing written) when there is none.
    /// </summary>
    public static bool TryTake(PacketBuffer buffer, Device owner, Span<byte> chainKey, Span<byte> hash, Span<byte> remoteStatic)
    {
        if (buffer.StashOwner is null)
        {
            return false;
        }
        ReadOnlySpan<byte> stash = buffer.Array.AsSpan(buffer.Array.Length - PacketBuffer.SecretTailSize, Size);
        bool mine = ReferenceEquals(buffer.StashOwner, owner)
            && buffer.Length == MessageHeader.InitiationSize
            && buffer.Offset + buffer.Length <= buffer.Array.Length - PacketBuffer.SecretTailSize
            && CryptographicOperations.FixedTimeEquals(stash[(3 * KeyLength)..], Inputs(buffer));
        if (mine)
        {
            stash[..KeyLength].CopyTo(chainKey);
            stash.Slice(KeyLength, KeyLength).CopyTo(hash);
            stash.Slice(2 * KeyLength, KeyLength).CopyTo(remoteStatic);
        }
        buffer.ForgetSecretTail();
        return mine;
    }

    private static ReadOnlySpan<byte> Inputs(PacketBuffer buffer) => buffer.Data.Slice(MessageLayout.InitiationEphemeral, InputLength);
}
