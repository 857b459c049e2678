namespace Firezone.Actors.Engine.WireGuard;

/// <summary>
/// Field offsets of the four messages (whitepaper section 5.4; wireguard-go's MessageInitiation,
/// MessageResponse, MessageCookieReply, MessageTransport). Every integer is little-endian; the type
/// is one byte followed by three reserved zero bytes.
/// </summary>
internal static class MessageLayout
{
    // MessageInitiation, 148 bytes.
    public const int InitiationSender = 4;
    public const int InitiationEphemeral = 8;
    public const int InitiationStatic = 40;       // 32 + 16 tag
    public const int InitiationTimestamp = 88;    // 12 + 16 tag
    public const int InitiationMac1 = 116;
    public const int InitiationMac2 = 132;

    // MessageResponse, 92 bytes.
    public const int ResponseSender = 4;
    public const int ResponseReceiver = 8;
    public const int ResponseEphemeral = 12;
    public const int ResponseEmpty = 44;          // 0 + 16 tag
    public const int ResponseMac1 = 60;
    public const int ResponseMac2 = 76;

    // MessageCookieReply, 64 bytes.
    public const int CookieReceiver = 4;
    public const int CookieNonce = 8;             // 24
    public const int CookieEncrypted = 32;        // 16 + 16 tag

    // MessageTransport, 16 + n + 16 bytes.
    public const int TransportReceiver = 4;
    public const int TransportCounter = 8;
    public const int TransportContent = 16;

    public const int MacSize = 16;
}
