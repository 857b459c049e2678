using System.Buffers.Binary;

namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// Classifies a datagram by its type byte and exact size (whitepaper section 5.4) and extracts the
/// receiver index, so the socket reader can route it without decrypting anything.
/// </summary>
public static class MessageHeader
{
    public const int InitiationSize = 148;
    public const int ResponseSize = 92;
    public const int CookieReplySize = 64;
    /// <summary>type(1) reserved(3) receiver(4) counter(8).</summary>
    public const int TransportHeaderSize = 16;
    public const int AeadTagSize = 16;
    /// <summary>A keepalive: header plus the tag of an empty payload.</summary>
    public const int TransportMinSize = TransportHeaderSize + AeadTagSize;

    /// <summary>
    /// The message type when the size matches it and the reserved bytes are zero, else
    /// <see cref="MessageType.Invalid"/>. <paramref name="receiverIndex"/> is the local index the
    /// sender addressed (responses, cookie replies and transport data), 0 for initiations.
    /// </summary>
    public static MessageType Classify(ReadOnlySpan<byte> datagram, out uint receiverIndex)
    {
        receiverIndex = 0;
        if (datagram.Length < 4 || datagram[1] != 0 || datagram[2] != 0 || datagram[3] != 0)
        {
            return MessageType.Invalid;
        }
        switch ((MessageType)datagram[0])
        {
            case MessageType.Initiation when datagram.Length == InitiationSize:
                return MessageType.Initiation;
            case MessageType.Response when datagram.Length == ResponseSize:
                receiverIndex = BinaryPrimitives.ReadUInt32LittleEndian(datagram.Slice(8, 4));
                return MessageType.Response;
            case MessageType.CookieReply when datagram.Length == CookieReplySize:
                receiverIndex = BinaryPrimitives.ReadUInt32LittleEndian(datagram.Slice(4, 4));
                return MessageType.CookieReply;
            // No "multiple of 16" check: the kernel and wireguard-go pad only up to the MTU, so an
            // MTU-sized packet (1420 bytes by default) arrives with a payload that is not.
            case MessageType.TransportData when datagram.Length >= TransportMinSize:
                receiverIndex = BinaryPrimitives.ReadUInt32LittleEndian(datagram.Slice(4, 4));
                return MessageType.TransportData;
            default:
                return MessageType.Invalid;
        }
    }
}
